"""The fitting half of `calibrate`: score the labelled examples, fit each threshold, and describe
the old and new operating points (and the held-out ones) as report entries."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from workbench._calibrate_checks import CheckScores, label_keys, score_checks, threshold_bounds
from workbench.core.errors import DatasetError
from workbench.evaluation._intervals import wilson
from workbench.evaluation.calibration import CONFIDENCE, fit_threshold, operating_point, out_of_bag
from workbench.evaluation.calibration_routes import SIMILARITY, fit_route_threshold, route_operating_point

if TYPE_CHECKING:
    from workbench._calibrate_types import LabelledExample, Settings
    from workbench.core.protocols import Embedder
    from workbench.core.schema import PipelineConfig

# Thresholds are written with this many decimals; the figures are recounted at the written value.
DECIMALS = 6


def _too_few(source: str, what: str, counts: dict[str, int], minimum: int) -> None:
    if min(counts.values()) < minimum:
        have = " and ".join(f"{n} {kind}" for kind, n in counts.items())
        raise DatasetError(
            f"{source}: {what} has {have} examples; a fit needs at least {minimum} of each "
            f"(--min-examples), or its threshold would be noise"
        )


def _resolution_warning(name: str, negatives: int, target: float, conservative: bool) -> str | None:
    """A target FPR finer than 1/negatives cannot be told apart from 0 on these examples; with
    `conservative`, even 0 false positives must leave the upper bound under the target."""
    if conservative and wilson(0, negatives, CONFIDENCE)[1] > target:
        return (
            f"{name}: with {negatives} negative examples even 0 false positives leave the FPR's 95% upper "
            f"bound at {wilson(0, negatives, CONFIDENCE)[1]:.3f}, above {target:g}; the threshold flags the fewest"
        )
    if negatives * target >= 1:
        return None
    return (
        f"{name}: {negatives} negative examples cannot resolve an FPR of {target:g} (it allows no false "
        f"positive at all); its FPR's 95% interval shows how little the fit guarantees"
    )


def _check_entry(scored: CheckScores, settings: Settings, warnings: list[str]) -> dict[str, Any]:
    scores, positive = np.asarray(scored.scores), np.asarray(scored.positive, dtype=bool)
    polarity = scored.calibration.polarity
    bounds = threshold_bounds(scored.check.config)

    def fit(s: np.ndarray, p: np.ndarray) -> float:
        threshold = fit_threshold(
            s,
            p,
            polarity=polarity,
            objective="f1" if settings.objective == "f1" else "fpr",
            target_fpr=settings.target_fpr,
            bounds=bounds,
            conservative=settings.conservative,
        )
        return bounds.clamp(round(threshold, DECIMALS))

    new = fit(scores, positive)
    if new in (bounds.clamp(-np.inf), bounds.clamp(np.inf)):
        warnings.append(f"{scored.side}/{scored.name}: the fitted threshold sits at the end of its allowed range")
    if settings.objective == "fpr":
        negatives = int((~positive).sum())
        warning = _resolution_warning(
            f"{scored.side}/{scored.name}", negatives, settings.target_fpr, settings.conservative
        )
        if warning:
            warnings.append(warning)
    old = scored.old_threshold
    unseen = out_of_bag(scores, positive, fit, polarity, seed=settings.seed)
    return {
        "name": scored.name,
        "side": scored.side,
        "index": scored.index,
        "label": scored.calibration.label,
        "polarity": polarity,
        "positives": int(positive.sum()),
        "negatives": int((~positive).sum()),
        "unscored": scored.unscored,
        "old": operating_point(scores, positive, old, polarity, seed=settings.seed).as_dict(),
        "new": operating_point(scores, positive, new, polarity, seed=settings.seed).as_dict(),
        "out_of_bag": {k: v.as_dict() for k, v in unseen.items()},
    }


def _held_entry(scored: CheckScores, old: float, new: float, seed: int) -> dict[str, Any]:
    scores, positive = np.asarray(scored.scores), np.asarray(scored.positive, dtype=bool)
    polarity = scored.calibration.polarity
    return {
        "positives": int(positive.sum()),
        "negatives": int((~positive).sum()),
        "unscored": scored.unscored,
        "old": operating_point(scores, positive, old, polarity, seed=seed).as_dict(),
        "new": operating_point(scores, positive, new, polarity, seed=seed).as_dict(),
    }


def fit_checks(
    config: PipelineConfig,
    examples: Sequence[LabelledExample],
    held: Sequence[LabelledExample],
    embedder: Embedder,
    settings: Settings,
    *,
    source: str,
) -> tuple[list[dict[str, Any]], list[str], list[str]]:
    """(one report entry per fitted check, the configured checks without a calibrator, warnings)."""
    scored, skipped = score_checks(config, examples, embedder)
    warnings: list[str] = []
    used = {s.calibration.label for s in scored}
    for key in label_keys():
        if key not in used and any(key in e.labels for e in examples):
            warnings.append(f"label {key!r} is in {source} but no check of the config reads it")
    entries = []
    for one in scored:
        counts = {"positive": sum(one.positive), "negative": len(one.positive) - sum(one.positive)}
        _too_few(
            source, f"{one.side} check {one.name!r} (label {one.calibration.label!r})", counts, settings.min_examples
        )
        entries.append(_check_entry(one, settings, warnings))
    if held:
        held_scored = {(s.side, s.index): s for s in score_checks(config, held, embedder)[0]}
        for entry in entries:
            match = held_scored.get((entry["side"], entry["index"]))
            if match is not None and match.scores:
                old, new = entry["old"]["threshold"], entry["new"]["threshold"]
                entry["holdout"] = _held_entry(match, old, new, settings.seed)
    return entries, skipped, warnings


def _route_scores(router: Any, examples: Sequence[LabelledExample]) -> tuple[list[str], np.ndarray, list[str]]:
    best, scores, labels = [], [], []
    for example in examples:
        assert example.text is not None and example.route is not None
        by_route = router.scores(example.text)
        top = max(by_route, key=by_route.__getitem__)
        best.append(top)
        scores.append(by_route[top])
        labels.append(example.route)
    return best, np.asarray(scores, dtype=float), labels


def fit_router(
    config: PipelineConfig,
    examples: Sequence[LabelledExample],
    held: Sequence[LabelledExample],
    embedder: Embedder,
    settings: Settings,
    warnings: list[str],
    *,
    source: str,
) -> dict[str, Any] | None:
    """The router's report entry, or None when no example carries a route label."""
    from workbench.routing.semantic import SemanticRouter

    routed = [e for e in examples if e.route is not None]
    if not routed:
        return None
    routing = config.routing
    if not any(r.utterances for r in routing.routes.values()):
        warnings.append("route labels given, but no route of the config has utterances: the router was not fitted")
        return None
    router = SemanticRouter(routing, embedder)
    best, scores, labels = _route_scores(router, routed)
    in_scope = sum(label != routing.default for label in labels)
    counts = {"in-scope": in_scope, f"default ({routing.default})": len(labels) - in_scope}
    _too_few(source, "the router (label 'route')", counts, settings.min_examples)
    bounds = SIMILARITY
    fitted = fit_route_threshold(
        best,
        scores,
        labels,
        default=routing.default,
        objective="target" if settings.route_objective == "target" else "accuracy",
        target_rate=settings.route_target,
        bounds=bounds,
    )
    new = bounds.clamp(round(fitted, DECIMALS))
    seed, default = settings.seed, routing.default
    entry: dict[str, Any] = {
        "default": default,
        "in_scope": in_scope,
        "default_labelled": len(labels) - in_scope,
        "old": route_operating_point(best, scores, labels, default=default, threshold=routing.threshold, seed=seed),
        "new": route_operating_point(best, scores, labels, default=default, threshold=new, seed=seed),
    }
    held_routed = [e for e in held if e.route is not None]
    if held_routed:
        h_best, h_scores, h_labels = _route_scores(router, held_routed)
        entry["holdout"] = {
            "questions": len(h_labels),
            "old": route_operating_point(
                h_best, h_scores, h_labels, default=default, threshold=routing.threshold, seed=seed
            ).as_dict(),
            "new": route_operating_point(
                h_best, h_scores, h_labels, default=default, threshold=new, seed=seed
            ).as_dict(),
        }
    entry["old"], entry["new"] = entry["old"].as_dict(), entry["new"].as_dict()
    return entry
