"""Which guard checks `calibrate` can fit, which label each one reads, and how they are scored.

`CALIBRATIONS` maps a check name to its `CheckCalibration`: a new check with a score and a
`threshold` plugs in with one line here. Scores come from the real check (`inspect(...).score`),
so the fitted threshold applies to exactly what the pipeline computes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from workbench.evaluation.calibration import Bounds, Polarity

if TYPE_CHECKING:
    from workbench._calibrate_types import LabelledExample
    from workbench.core.protocols import Embedder
    from workbench.core.schema import PipelineConfig


@dataclass(frozen=True)
class CheckCalibration:
    """How to calibrate one kind of check.

    `label` is the labels-file key that says whether an example is one the check should catch;
    the example is a positive when that key's value equals `positive`. `polarity` is the check's
    trigger rule: "above" is `score >= threshold`, "below" is `score < threshold`.
    """

    label: str
    side: Literal["input", "output"]
    polarity: Polarity = "above"
    positive: bool = True
    needs: tuple[str, ...] = ()  # the keys an example with this label must have besides the text

    @property
    def required(self) -> tuple[str, ...]:
        return ("text" if self.side == "input" else "answer", *self.needs)


CALIBRATIONS: dict[str, CheckCalibration] = {
    "attack": CheckCalibration(label="attack", side="input"),
    "injection": CheckCalibration(label="attack", side="input"),
    "groundedness": CheckCalibration(
        label="grounded", side="output", polarity="below", positive=False, needs=("contexts",)
    ),
    "safety": CheckCalibration(label="unsafe", side="output"),
}


def label_keys() -> list[str]:
    return sorted({c.label for c in CALIBRATIONS.values()})


def threshold_bounds(config: Any) -> Bounds:
    """The range the check's config model allows for `threshold` (its gt/ge/lt/le)."""
    limits: dict[str, float] = {}
    for meta in type(config).model_fields["threshold"].metadata:
        for key in ("gt", "ge", "lt", "le"):
            if hasattr(meta, key):
                limits[key] = float(getattr(meta, key))
    return Bounds(
        low=limits.get("gt", limits.get("ge", -math.inf)),
        high=limits.get("lt", limits.get("le", math.inf)),
        low_inclusive="gt" not in limits,
        high_inclusive="lt" not in limits,
    )


@dataclass
class CheckScores:
    """One configured check's scores on the examples that carry its label."""

    name: str  # as `guard` names it: the check, numbered when a config repeats it
    side: str
    index: int  # position in guardrails.<side>
    check: Any  # the built GuardCheck
    calibration: CheckCalibration
    ids: list[Any]
    scores: list[float]
    positive: list[bool]
    unscored: int = 0  # examples the check declined to score (e.g. an abstaining answer)

    @property
    def old_threshold(self) -> float:
        # `attack` resolves an unset threshold to its head's own; others read the config.
        value = getattr(self.check, "threshold", None)
        return float(value if value is not None else self.check.config.threshold)


def _names(configs: Sequence[Any]) -> list[str]:
    seen: dict[str, int] = {}
    names = []
    for config in configs:
        seen[config.check] = seen.get(config.check, 0) + 1
        names.append(config.check if seen[config.check] == 1 else f"{config.check}#{seen[config.check]}")
    return names


def _state(example: LabelledExample, side: str) -> Any:
    from workbench.core.state import Chunk, RequestState

    if side == "input":
        assert example.text is not None
        return example.text, RequestState(query=example.text)
    assert example.answer is not None
    chunks = tuple(
        Chunk(chunk_id=f"context-{i}", doc_id=f"context-{i}", text=t, start=0, end=len(t))
        for i, t in enumerate(example.contexts or [])
    )
    state = RequestState(query=example.question or "", answer=example.answer, chunks=chunks)
    return example.answer, state


def score_checks(
    config: PipelineConfig, examples: Sequence[LabelledExample], embedder: Embedder
) -> tuple[list[CheckScores], list[str]]:
    """Score every labelled example once with each calibratable check of `config`; also the
    names of the configured checks that have no calibrator (reported, not fitted)."""
    from workbench.guardrails import CheckContext, build_check

    fitted: list[CheckScores] = []
    skipped: list[str] = []
    for side in ("input", "output"):
        configs = list(getattr(config.guardrails, side))
        context = CheckContext(side=side, routes=dict(config.routing.routes), embedder=embedder)
        for index, (name, check_config) in enumerate(zip(_names(configs), configs, strict=True)):
            calibration = CALIBRATIONS.get(check_config.check)
            if calibration is None or calibration.side != side:
                skipped.append(f"{side}/{name}")
                continue
            labelled = [e for e in examples if calibration.label in e.labels]
            if not labelled:
                continue
            check = build_check(check_config, context)
            result = CheckScores(name, side, index, check, calibration, [], [], [])
            for example in labelled:
                text, state = _state(example, side)
                score = check.inspect(text, state).score
                if score is None or math.isnan(score):
                    result.unscored += 1
                    continue
                result.ids.append(example.id)
                result.scores.append(float(score))
                result.positive.append(example.labels[calibration.label] == calibration.positive)
            fitted.append(result)
    return fitted, skipped
