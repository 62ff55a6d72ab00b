"""Where sweep work runs: in this process (`local`, the default) or on a Ray cluster (`ray`).

An executor answers work items and hands each finished row to `on_row` in the calling
process, which alone writes the journal; so the journal and results do not depend on where
the work ran.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from workbench.core.dataset import Dataset
from workbench.core.registry import Registry
from workbench.core.schema import PipelineConfig
from workbench.sweeps.work import WorkItem, answer_items

OnRow = Callable[[dict[str, Any]], None]


@dataclass
class Job:
    """Everything a worker needs to answer items, as plain picklable data."""

    root: Path
    configs: dict[str, PipelineConfig]
    dataset: Dataset
    metrics: list[str]
    k: int
    concurrency: int
    judge: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    def run(self, job: Job, items: Sequence[WorkItem], on_row: OnRow, should_start: Callable[[], bool]) -> None: ...

    def close(self) -> None: ...


def executor_registry() -> Registry:
    return Registry(
        "sweep executor",
        {
            "local": "workbench.sweeps.executors:LocalExecutor",
            "ray": "workbench.sweeps.ray_executor:RayExecutor",
        },
    )


class LocalExecutor:
    """Answers items on the shared resources' event loop, in this process."""

    def __init__(self, resources: Any, metrics: Sequence[Any]) -> None:
        self.resources = resources
        self.metrics = list(metrics)

    def run(self, job: Job, items: Sequence[WorkItem], on_row: OnRow, should_start: Callable[[], bool]) -> None:
        # Load every model and index first: the first question's latency is not a load time.
        for variant in dict.fromkeys(item.variant for item in items):
            self.resources.warm_up(job.configs[variant], job.dataset.documents)
        self.resources.loop.run(
            answer_items(
                items,
                job.configs,
                job.dataset.documents,
                self.resources,
                self.metrics,
                concurrency=job.concurrency,
                on_row=on_row,
                should_stop=lambda: not should_start(),
            )
        )

    def close(self) -> None:
        """The resources belong to the sweep, which closes them."""
