"""`SweepRunner`: the search, its budget and its journal, then the choice of a winner."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.core.dataset import Question
from workbench.sweeps.budget import BudgetMeter
from workbench.sweeps.executors import Executor
from workbench.sweeps.plan import variants_frame, work_items
from workbench.sweeps.result import SweepResult
from workbench.sweeps.select import Selection, pareto_front, per_question, prune, select_winner

if TYPE_CHECKING:
    from workbench.sweeps.resources import SharedResources
    from workbench.sweeps.sweep import Sweep

log = logging.getLogger(__name__)


class SweepRunner:
    def __init__(
        self,
        sweep: Sweep,
        resources: SharedResources,
        executor: Executor,
        *,
        progress: bool = False,
        on_row: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        self.sweep = sweep
        self.spec = sweep.spec
        self.journal = sweep.journal
        self.resources = resources
        self.executor = executor
        self.progress = progress
        self.user_on_row = on_row
        self.meter: BudgetMeter | None = None
        self._last_tick = time.monotonic()

    # --- recording -----------------------------------------------------------------------
    def _record(self, row: dict[str, Any]) -> None:
        """Journal one finished row (first, so a crash right after loses nothing), then count it."""
        assert self.meter is not None
        self.journal.write(self.sweep.id, row)
        self.meter.record(row)
        now = time.monotonic()
        self.journal.add_elapsed(self.sweep.id, now - self._last_tick)
        self._last_tick = now
        if self._bar is not None:
            self._bar.update(1)
        if self.user_on_row is not None:
            self.user_on_row(row)

    def _answer(self, variants: Sequence[str], questions: Sequence[Question], split: str) -> None:
        from tqdm.auto import tqdm

        assert self.meter is not None
        if self.meter.reason is not None:
            return
        done = self.journal.done_keys(self.sweep.id)
        items = work_items(variants, questions, self.spec.repeats, split, done)
        if not items:
            return
        self._bar = tqdm(total=len(items), desc=f"{self.spec.name} {split}", unit="q", disable=not self.progress)
        try:
            self.executor.run(self.sweep.job(), items, self._record, self.meter.take)
        finally:
            self._bar.close()
            self._bar = None

    _bar: Any = None

    # --- the search ----------------------------------------------------------------------
    @staticmethod
    def _subset(
        rows: pd.DataFrame, split: str, variants: Sequence[str], questions: Sequence[Question] | None = None
    ) -> pd.DataFrame:
        if rows.empty:
            return rows
        keep = rows["split"].eq(split) & rows["variant"].isin(list(variants))
        if questions is not None:
            keep &= rows["question_id"].isin([q.id for q in questions])
        return rows[keep].reset_index(drop=True)

    def _halving(self, survivors: list[str]) -> list[str]:
        """Answer a rung of questions; drop the variants significantly worse than the best on
        those same questions; give the survivors `factor` times more questions; repeat."""
        assert self.meter is not None
        search, s = self.sweep.search_q, self.spec.search
        size, rung = min(s.initial_questions, len(search)), 0
        while True:
            self._answer(survivors, search[:size], "search")
            if self.meter.reason is not None or size >= len(search) or len(survivors) <= 1:
                return survivors
            rows = self._subset(self.journal.rows(self.sweep.id), "search", survivors, search[:size])
            worse = prune(
                rows,
                survivors,
                objective=self.spec.objective.metric,
                direction=self.spec.objective.resolved_direction,
                alpha=s.alpha,
                seed=s.seed,
            )
            for variant in worse:
                reason = f"significantly worse on {self.spec.objective.metric} after {size} questions"
                self.journal.prune(self.sweep.id, variant, rung, reason)
            survivors = [v for v in survivors if v not in worse]
            if s.keep is not None:
                kept = self._best(rows, survivors, max(1, math.ceil(len(survivors) * s.keep)))
                for variant in survivors:
                    if variant not in kept:
                        reason = f"outside the best {s.keep:.0%} on {self.spec.objective.metric} after {size} questions"
                        self.journal.prune(self.sweep.id, variant, rung, reason)
                survivors = [v for v in survivors if v in kept]
            size, rung = min(size * s.factor, len(search)), rung + 1

    def _best(self, rows: pd.DataFrame, survivors: list[str], n: int) -> set[str]:
        """The `n` survivors with the best mean objective on the rung (errors as losses)."""
        direction = self.spec.objective.resolved_direction
        table = per_question(rows, self.spec.objective.metric, direction)
        means = table.reindex(columns=survivors).mean()
        sign = -1.0 if direction == "maximize" else 1.0
        order = sorted(survivors, key=lambda v: (math.isnan(means[v]), sign * float(means[v]), v))
        return set(order[:n])

    def _select(self, rows: pd.DataFrame) -> Selection:
        return select_winner(
            rows,
            objective=self.spec.objective.metric,
            direction=self.spec.objective.resolved_direction,
            constraints=[(c.metric, c.min, c.max) for c in self.spec.constraints],
            metrics=self.spec.scored_metrics,
            alpha=self.spec.search.alpha,
            seed=self.spec.search.seed,
        )

    def _front(self, selection: Selection) -> list[str]:
        objectives = [(self.spec.objective.metric, self.spec.objective.resolved_direction)]
        objectives += [(o.metric, o.resolved_direction) for o in self.spec.pareto]
        return pareto_front(selection.leaderboard, objectives)

    def run(self, *, retry_errors: bool = False) -> SweepResult:
        sweep, journal = self.sweep, self.journal
        journal.open_sweep(sweep.id, self.spec.name, sweep.spec_yaml, sweep.dataset.name, sweep.dataset.content_hash)
        for v in sweep.variants:
            journal.add_variant(sweep.id, v.id, v.params, v.config.model_dump_json(), v.config_hash)
        if retry_errors:
            log.info("retrying %d errored rows", journal.forget_errors(sweep.id))
        journal.set_status(sweep.id, "running")
        self.meter = BudgetMeter(self.spec.budget, journal.spent(sweep.id))
        everyone = [v.id for v in sweep.variants]
        if self.spec.search.strategy == "halving":
            survivors = self._halving(everyone)
        else:
            self._answer(everyone, sweep.search_q, "search")
            survivors = everyone
        rows = journal.rows(sweep.id)
        search_rows = self._subset(rows, "search", survivors)
        searched = self._select(search_rows) if not search_rows.empty else None
        final, front = searched, self._front(searched) if searched is not None else []
        if sweep.confirm_q and searched is not None:
            candidates = list(dict.fromkeys([*searched.tied, *front]))
            self._answer(candidates, sweep.confirm_q, "confirm")
            rows = journal.rows(sweep.id)
            confirm_rows = self._subset(rows, "confirm", candidates)
            if not confirm_rows.empty:
                final = self._select(confirm_rows)
                front = self._front(final)
        status = self.meter.reason or "finished"
        journal.set_status(sweep.id, status)
        return self._result(rows, status, final, searched, front)

    def _result(
        self, rows: pd.DataFrame, status: str, final: Selection | None, searched: Selection | None, front: list[str]
    ) -> SweepResult:
        variants = variants_frame(self.sweep.variants, self.journal.pruned(self.sweep.id))
        empty = pd.DataFrame()
        return SweepResult(
            sweep_id=self.sweep.id,
            name=self.spec.name,
            status=status,
            variants=variants,
            rows=rows,
            leaderboard=final.leaderboard if final else empty,
            comparisons=final.comparisons if final else empty,
            winner=final.best if final else None,
            recommended=final.recommended if final else None,
            tied=final.tied if final else [],
            pareto=front,
            note=final.note if final else "no question finished",
            spent=self.journal.spent(self.sweep.id),
            objective=self.spec.objective.metric,
            direction=self.spec.objective.resolved_direction,
            search_leaderboard=searched.leaderboard if searched else empty,
            violations=final.violations if final else {},
        )
