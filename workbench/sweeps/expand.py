"""Expand a `SweepSpec` into validated pipeline configs, one `Variant` each.

Optuna draws the combinations (its `GridSampler` walks the grid, `RandomSampler` samples it),
over the *positions* of each axis's values, so any YAML value (a list, a whole section) can be
swept. Each combination becomes the base config with the axis overrides applied at their
dotted keys, validated by `PipelineConfig`: a bad value fails here, naming the axis.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import math
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from workbench.core.config import describe_validation_error
from workbench.core.errors import ConfigError, MissingDependency
from workbench.core.schema import PipelineConfig
from workbench.sweeps.spec import SweepSpec

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Variant:
    """One point of the sweep: its id, the axis values that make it, and its config."""

    id: str
    params: dict[str, Any]  # axis -> value (a named axis gives the variant's name)
    overrides: dict[str, Any]  # dotted key -> value, as applied to the base config
    config: PipelineConfig = field(repr=False)
    config_hash: str = ""

    @property
    def label(self) -> str:
        return ", ".join(f"{axis}={_short(value)}" for axis, value in self.params.items())


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 40 else text[:37] + "..."


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def digest(value: Any, length: int = 12) -> str:
    return hashlib.sha256(canonical_json(value).encode()).hexdigest()[:length]


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set `a.b.c` in nested dicts; intermediate mappings are created where the config allows
    free-form names (models, prompts, routes, params); unknown keys fail validation later."""
    *parents, leaf = key.split(".")
    node = data
    for i, part in enumerate(parents):
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"axis {key!r}: '{'.'.join(parents[: i + 1])}' is not a section")
        node = child
    node[leaf] = copy.deepcopy(value)


def _axis_choices(spec: SweepSpec) -> dict[str, list[tuple[Any, dict[str, Any]]]]:
    """Per axis, its values as (label, {dotted key: value}) pairs."""
    out: dict[str, list[tuple[Any, dict[str, Any]]]] = {}
    for axis, values in spec.axes.items():
        if isinstance(values, dict):
            out[axis] = [(name, dict(overrides)) for name, overrides in values.items()]
        else:
            out[axis] = [(value, {axis: value}) for value in values]
    return out


def build_variant(base: dict[str, Any], chosen: dict[str, tuple[Any, dict[str, Any]]]) -> Variant:
    data = copy.deepcopy(base)
    overrides: dict[str, Any] = {}
    for _, sets in chosen.values():
        for key, value in sets.items():
            set_dotted(data, key, value)
            overrides[key] = value
    params = {axis: label for axis, (label, _) in chosen.items()}
    try:
        config = PipelineConfig.model_validate(data)
    except ValidationError as exc:
        where = ", ".join(f"{axis}={_short(value)}" for axis, value in params.items())
        what = "axis" if len(params) == 1 else "variant"
        raise ConfigError(describe_validation_error(exc, f"{what} {where}")) from exc
    resolved = config.model_dump(mode="json")
    config_hash = digest(resolved, 16)
    # The id names what was chosen, not the whole config: the same choice gets the same id
    # across edits of unrelated base settings (the sweep id covers those).
    return Variant(f"v-{digest(params, 8)}", params, overrides, config, config_hash)


def _samples(spec: SweepSpec) -> bool:
    """Whether the variants are a random draw (`random`, or `halving` with `samples`) rather
    than the whole grid."""
    return spec.search.strategy == "random" or (spec.search.strategy == "halving" and spec.search.samples is not None)


def _sampler(spec: SweepSpec, grid: dict[str, list[int]]) -> Any:
    try:
        import optuna
    except ImportError as exc:
        raise MissingDependency("optuna", "sweeps") from exc
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if _samples(spec):
        return optuna.samplers.RandomSampler(seed=spec.search.seed)
    return optuna.samplers.GridSampler(grid, seed=spec.search.seed)


def expand(spec: SweepSpec, base: PipelineConfig) -> list[Variant]:
    """Every variant the spec's search asks for, validated, without duplicates."""
    choices = _axis_choices(spec)
    base_data = base.model_dump(mode="json")
    # Every value on its own first, so a bad one is named even if the search never draws it.
    for axis, values in choices.items():
        for value in values:
            build_variant(base_data, {axis: value})
    grid = {axis: list(range(len(values))) for axis, values in choices.items()}
    size = math.prod(len(v) for v in grid.values())
    wanted = min(spec.search.samples or size, size)
    import optuna

    study = optuna.create_study(sampler=_sampler(spec, grid), direction="maximize")
    variants: dict[str, Variant] = {}

    def draw(trial: Any) -> float:
        picks = {axis: trial.suggest_categorical(axis, positions) for axis, positions in grid.items()}
        variant = build_variant(base_data, {axis: choices[axis][int(pos)] for axis, pos in picks.items()})
        variants.setdefault(variant.id, variant)
        return 0.0

    def enough(study: Any, _trial: Any) -> None:
        if len(variants) >= wanted:
            study.stop()

    # A random sampler may repeat a point: allow extra draws before giving up.
    trials = wanted * 20 if _samples(spec) else size
    study.optimize(draw, n_trials=trials, callbacks=[enough])
    # Grid order is the sampler's shuffle; keep the spec's order instead, so runs read naturally.
    order = {canonical_json(v.params): v for v in variants.values()}
    return [order[k] for k in sorted(order, key=lambda k: _grid_position(json.loads(k), choices))]


def _grid_position(params: dict[str, Any], choices: dict[str, list[tuple[Any, dict[str, Any]]]]) -> tuple[int, ...]:
    labels = {axis: [canonical_json(label) for label, _ in values] for axis, values in choices.items()}
    return tuple(labels[axis].index(canonical_json(params[axis])) for axis in choices)
