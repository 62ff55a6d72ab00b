"""`Sweep`: one sweep's parts, loaded and checked before anything runs: its spec, base config,
variants, dataset and question splits, its id, and its journal."""

from __future__ import annotations

from pathlib import Path

from workbench.core.config import dump_yaml, load_yaml
from workbench.core.dataset import load_dataset
from workbench.core.errors import ConfigError
from workbench.core.schema import PipelineConfig
from workbench.sweeps.executors import Job
from workbench.sweeps.expand import Variant, expand
from workbench.sweeps.journal import Journal
from workbench.sweeps.plan import estimate, split_questions, sweep_id, variants_frame, work_items
from workbench.sweeps.result import SweepPlan
from workbench.sweeps.spec import load_spec

JOURNAL_FILE = "sweeps.sqlite"


class Sweep:
    """One sweep's state while it runs; `run_sweep` and `plan_sweep` are its front doors."""

    def __init__(self, spec_path: str | Path, dataset: str | Path, *, root: str | Path, limit: int | None) -> None:
        self.root = Path(root)
        spec_file = Path(spec_path)
        if not spec_file.is_absolute() and not spec_file.exists():
            spec_file = self.root / spec_file
        self.spec, base_path = load_spec(spec_file)
        self.spec_yaml = dump_yaml(self.spec)
        self.base = load_yaml(PipelineConfig, base_path)
        try:
            self.variants: list[Variant] = expand(self.spec, self.base)
        except ConfigError as exc:
            raise ConfigError(f"{spec_file}: {exc}") from exc
        self.by_id = {v.id: v for v in self.variants}
        self.configs = {v.id: v.config for v in self.variants}
        self.dataset = load_dataset(dataset, base=self.root).limit(limit)
        confirm = self.spec.confirm
        self.search_q, self.confirm_q = split_questions(self.dataset.questions, confirm.holdout, confirm.seed)
        self.id = sweep_id(self.spec, self.base, self.dataset, self.dataset.questions)
        self.state_dir = (self.root / self.base.store.cache).parent
        self.journal = Journal(self.state_dir / JOURNAL_FILE)

    @property
    def concurrency(self) -> int:
        return self.spec.concurrency or self.base.concurrency

    def job(self) -> Job:
        return Job(
            root=self.root,
            configs=self.configs,
            dataset=self.dataset,
            metrics=self.spec.scored_metrics,
            k=self.base.evaluation.k,
            concurrency=self.concurrency,
        )

    def plan(self) -> SweepPlan:
        done = self.journal.done_keys(self.id)
        items = work_items(self.configs, self.search_q, self.spec.repeats, "search", done)
        total = len(self.variants) * len(self.dataset.questions) * self.spec.repeats
        return SweepPlan(
            sweep_id=self.id,
            name=self.spec.name,
            strategy=self.spec.search.strategy,
            variants=variants_frame(self.variants),
            questions=len(self.search_q),
            confirm_questions=len(self.confirm_q),
            items=len(items),
            done=len(done),
            total_upper_bound=total,
            estimate=estimate(items, self.configs),
        )
