"""What `plan_sweep` and `run_sweep` return: plain data and DataFrames."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.sweeps.journal import Spent
from workbench.sweeps.plan import Estimate


@dataclass
class SweepPlan:
    sweep_id: str
    name: str
    strategy: str
    variants: pd.DataFrame
    questions: int
    confirm_questions: int
    items: int  # search items still to run (grid/random; halving runs at most this many)
    done: int  # rows already in the journal
    total_upper_bound: int
    estimate: Estimate

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "name": self.name,
            "strategy": self.strategy,
            "variants": len(self.variants),
            "questions": self.questions,
            "confirm_questions": self.confirm_questions,
            "items_to_run": self.items,
            "rows_done": self.done,
            "estimate": {
                "model_calls": self.estimate.model_calls,
                "tokens": self.estimate.tokens,
                "dollars": round(self.estimate.dollars, 6),
                "seconds": round(self.estimate.seconds, 1),
            },
            "variant_list": self.variants[["variant", "label"]].to_dict(orient="records"),
        }


@dataclass
class SweepResult:
    sweep_id: str
    name: str
    status: str  # "finished", or why it stopped ("budget model_calls reached ...")
    variants: pd.DataFrame  # variant, label, one column per axis, config_hash, pruned_at_rung
    rows: pd.DataFrame  # one row per (variant, question_id, repeat)
    leaderboard: pd.DataFrame  # the deciding split's: confirm if held out, else search
    comparisons: pd.DataFrame  # the winner against every other variant, Holm-adjusted
    winner: str | None
    recommended: str | None
    tied: list[str]
    pareto: list[str]
    note: str
    spent: Spent
    objective: str = "token_f1"
    direction: str = "maximize"
    search_leaderboard: pd.DataFrame = field(default_factory=pd.DataFrame)
    violations: dict[str, list[str]] = field(default_factory=dict)
    rows_path: Path | None = None
    parent_run_id: str | None = None

    def errors(self) -> pd.DataFrame:
        """Errors per variant, apart from scores: how many, and the most common message."""
        if self.rows.empty or "error" not in self.rows:
            return pd.DataFrame(columns=["variant", "errors", "rows", "top_error"])
        failed = self.rows["error"].notna()
        out = []
        for variant, group in self.rows.groupby("variant"):
            errs = group.loc[failed[group.index], "error"]
            out.append(
                {
                    "variant": variant,
                    "errors": len(errs),
                    "rows": len(group),
                    "top_error": errs.value_counts().index[0] if len(errs) else None,
                }
            )
        return pd.DataFrame(out)

    def to_json(self) -> dict[str, Any]:
        def num(x: float) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else x

        return {
            "sweep_id": self.sweep_id,
            "name": self.name,
            "status": self.status,
            "mlflow_run_id": self.parent_run_id,
            "variants": len(self.variants),
            "winner": self.winner,
            "recommended": self.recommended,
            "tied": self.tied,
            "pareto": self.pareto,
            "note": self.note,
            "objective": self.objective,
            "direction": self.direction,
            "rows": str(self.rows_path) if self.rows_path else None,
            "row_count": len(self.rows),
            "errors": int(self.rows["error"].notna().sum()) if "error" in self.rows else 0,
            "spent": {
                "questions": self.spent.questions,
                "model_calls": self.spent.model_calls,
                "tokens": self.spent.tokens,
                "dollars": num(round(self.spent.dollars, 6)),
                "wall_time_s": round(self.spent.wall_time_s, 1),
            },
        }
