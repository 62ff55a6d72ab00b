"""`InputGuardStage` and `OutputGuardStage`: run checks in order and apply each one's action.

Every check that runs leaves a `GuardVerdict`. A `block` stops the remaining checks, sets
`state.blocked` (the Pipeline then stops) and replaces the answer with a refusal naming the
check. `mask` replaces the guarded text (query or answer) with the check's masked text. `flag`
only records the verdict.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from workbench.core.errors import GuardrailBlocked, InputTooLarge
from workbench.core.protocols import Embedder, embedder_identity
from workbench.core.registry import Registry
from workbench.core.schema import RouteConfig
from workbench.core.stage import Stage
from workbench.core.state import Action, GuardVerdict, RequestState
from workbench.guardrails.base import CheckContext, CheckResult, GuardCheck, config_dump
from workbench.guardrails.registry import build_check

ActionFn = Callable[[RequestState, str, str, CheckResult], RequestState]


def refusal(check: str, detail: str) -> str:
    """The answer a blocked request gets."""
    return f"Blocked by the {check} guardrail: {detail}"


def _block(state: RequestState, field: str, check: str, result: CheckResult) -> RequestState:
    return state.model_copy(update={"blocked": True, "answer": refusal(check, result.detail)})


def _mask(state: RequestState, field: str, check: str, result: CheckResult) -> RequestState:
    if result.masked_text is None:
        return state
    return state.model_copy(update={field: result.masked_text})


def _flag(state: RequestState, field: str, check: str, result: CheckResult) -> RequestState:
    return state


ACTIONS: dict[Action, ActionFn] = {"block": _block, "mask": _mask, "flag": _flag}


def _embedder_id(embedder: Embedder | None) -> Any:
    return None if embedder is None else embedder_identity(embedder)


class _GuardStage(Stage):
    side: str = "input"
    field: str = "query"
    # The PII check's analyzer and tokenizer decide what is masked.
    packages: ClassVar[tuple[str, ...]] = ("presidio-analyzer", "presidio-anonymizer", "spacy")

    def __init__(
        self,
        checks: Sequence[Any],
        *,
        routes: Mapping[str, RouteConfig] | None = None,
        embedder: Embedder | None = None,
        registry: Registry | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(None, name)
        self.check_configs = list(checks)
        self.routes = dict(routes or {})
        self.embedder = embedder
        context = CheckContext(side=self.side, routes=self.routes, embedder=embedder)
        self.checks: list[GuardCheck] = [build_check(c, context, registry) for c in self.check_configs]

    def warm_up(self) -> None:
        for check in self.checks:
            check.warm_up()

    def config_fingerprint(self) -> Any:
        out = {
            "checks": [config_dump(c) for c in self.check_configs],
            "routes": {k: config_dump(v) for k, v in sorted(self.routes.items())},
            "embedder": _embedder_id(self.embedder),
        }
        data = [check.fingerprint() for check in self.checks]
        if any(d is not None for d in data):
            # Only then, so that the keys of stages whose checks are all code stay as they were.
            out["check_data"] = data
        return out

    def _guard(self, state: RequestState) -> RequestState:
        verdicts: list[GuardVerdict] = []
        for check in self.checks:
            name = check.config.check
            result = check.inspect(getattr(state, self.field), state)
            verdicts.append(
                GuardVerdict(
                    stage=self.name, check=name, triggered=result.triggered, action=check.action, detail=result.detail
                )
            )
            if result.triggered:
                state = ACTIONS[check.action](state, self.field, name, result)
            if state.blocked:
                break
        return state.with_verdicts(*verdicts)


class InputGuardStage(_GuardStage):
    """Runs the input checks on the question; an `embedder` is what the `attack` check reads."""

    kind = "input_guard"
    reads = ("query",)
    writes = ("query", "verdicts", "blocked", "answer")
    side = "input"
    field = "query"

    def __init__(
        self,
        checks: Sequence[Any],
        *,
        embedder: Embedder | None = None,
        registry: Registry | None = None,
        name: str | None = None,
    ) -> None:
        super().__init__(checks, embedder=embedder, registry=registry, name=name)

    def run(self, state: RequestState) -> RequestState:
        if state.blocked:
            return state
        return self._guard(state)


class OutputGuardStage(_GuardStage):
    """Runs the output checks on the answer; `routes` tell `json_schema` which routes want JSON,
    and an optional `embedder` adds embedding similarity to `groundedness`."""

    kind = "output_guard"
    reads = ("query", "route", "chunks", "answer")
    writes = ("answer", "verdicts", "blocked")
    side = "output"
    field = "answer"

    def run(self, state: RequestState) -> RequestState:
        if state.blocked or state.answer is None:
            return state
        return self._guard(state)


def blocking_verdict(state: RequestState) -> GuardVerdict | None:
    """The verdict that blocked the request, if any."""
    return next((v for v in reversed(state.verdicts) if v.triggered and v.action == "block"), None)


def raise_if_blocked(state: RequestState) -> RequestState:
    """Return `state` unchanged, or raise the typed error for the check that blocked it.

    A `max_size` block on the input raises `InputTooLarge` whose message is the one-line detail
    ("question is 2,345 characters; the limit is 2,000"); any other block raises
    `GuardrailBlocked` naming the check.
    """
    if not state.blocked:
        return state
    verdict = blocking_verdict(state)
    if verdict is None:
        raise GuardrailBlocked("the request was blocked")
    if verdict.check == "max_size" and verdict.stage.startswith("input"):
        raise InputTooLarge(verdict.detail, check=verdict.check)
    raise GuardrailBlocked(refusal(verdict.check, verdict.detail), check=verdict.check)
