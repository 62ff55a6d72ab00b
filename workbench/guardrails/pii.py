"""`pii`: find personal data with Presidio (offline) and mask it as `<EMAIL_ADDRESS>` etc."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.schema import PiiCheck
from workbench.core.state import RequestState
from workbench.guardrails._presidio import presidio_engines
from workbench.guardrails.base import CheckContext, CheckResult, GuardCheck


class PiiGuard(GuardCheck):
    """Triggers when any configured entity is found at or above `score_threshold`.

    The masked text replaces each finding with `<ENTITY_TYPE>`. The Presidio engines are
    shared by every `PiiGuard` in the process and built on first use (or `warm_up`).
    """

    name = "pii"
    config: PiiCheck

    def warm_up(self) -> None:
        self._engines()

    def _engines(self):  # type: ignore[no-untyped-def]
        engines = presidio_engines()
        unknown = sorted(set(self.config.entities) - engines.supported_entities)
        if unknown:
            valid = ", ".join(sorted(engines.supported_entities))
            raise ConfigError(f"unknown PII entities {', '.join(unknown)}; valid: {valid}")
        return engines

    def inspect(self, text: str, state: RequestState) -> CheckResult:
        if not text.strip() or not self.config.entities:
            return CheckResult(False, "no PII found")
        engines = self._engines()
        findings = engines.analyzer.analyze(
            text=text, language="en", entities=list(self.config.entities), score_threshold=self.config.score_threshold
        )
        if not findings:
            return CheckResult(False, "no PII found")
        masked = engines.anonymizer.anonymize(text=text, analyzer_results=findings).text
        kinds = sorted({f.entity_type for f in findings})
        return CheckResult(
            True,
            f"found {len(findings)} PII span(s): {', '.join(kinds)}",
            masked_text=masked,
            score=max(f.score for f in findings),
        )


def pii_masker(checks: Sequence[Any]) -> Callable[[str], str] | None:
    """A function masking free text (a feedback comment, a log line) with every `pii` check
    among `checks`, whatever that check's action; None when there is none."""
    guards = [PiiGuard(c, CheckContext(side="input")) for c in checks if isinstance(c, PiiCheck)]
    if not guards:
        return None

    def mask(text: str) -> str:
        for guard in guards:
            result = guard.inspect(text, RequestState(query=text))
            text = result.masked_text if result.masked_text is not None else text
        return text

    return mask
