"""`InMemoryTracker`: a `Tracker` that keeps runs in a list, for tests and dry runs."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.core.errors import TrackingError
from workbench.tracking._limits import metric_items, param_items, tag_items

if TYPE_CHECKING:
    import pandas as pd


@dataclass(frozen=True)
class TrackedRun:
    """One logged run, as an MLflow store would hold it (params flattened to text)."""

    run_id: str
    experiment: str
    run_name: str
    config_yaml: str
    params: dict[str, str]
    metrics: dict[str, float]
    tags: dict[str, str]
    table: pd.DataFrame | None
    artifacts: list[Path] = field(default_factory=list)


class InMemoryTracker:
    """Records every `log_run` in `self.runs`. Pass `fail=...` to make logging raise `TrackingError`."""

    def __init__(self, *, fail: str | None = None) -> None:
        self.runs: list[TrackedRun] = []
        self.fail = fail
        self._ids = itertools.count(1)

    @property
    def last(self) -> TrackedRun:
        if not self.runs:
            raise LookupError("no run has been logged")
        return self.runs[-1]

    def log_run(
        self,
        *,
        experiment: str,
        run_name: str,
        config_yaml: str,
        params: dict[str, Any],
        metrics: dict[str, float],
        tags: dict[str, str] | None = None,
        table: pd.DataFrame | None = None,
        artifacts: Sequence[Path] = (),
    ) -> str:
        if self.fail is not None:
            raise TrackingError(self.fail)
        missing = [str(p) for p in artifacts if not Path(p).is_file()]
        if missing:
            raise TrackingError(f"artifact file not found: {', '.join(missing)}")
        run_id = f"mem-{next(self._ids):04d}"
        self.runs.append(
            TrackedRun(
                run_id=run_id,
                experiment=experiment,
                run_name=run_name,
                config_yaml=config_yaml,
                params=param_items(params),
                metrics=metric_items(metrics),
                tags=tag_items(tags or {}),
                table=None if table is None else table.copy(),
                artifacts=[Path(p) for p in artifacts],
            )
        )
        return run_id

    def runs_in(self, experiment: str) -> list[TrackedRun]:
        return [r for r in self.runs if r.experiment == experiment]
