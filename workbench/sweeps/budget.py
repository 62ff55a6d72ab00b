"""Budget accounting: every finished row counts against the sweep's caps, and no new question
starts once one is reached (those already in flight finish and are recorded)."""

from __future__ import annotations

import threading
import time
from typing import Any

from workbench.sweeps.journal import Spent
from workbench.sweeps.spec import Budget


class BudgetMeter:
    """What the sweep spent before this session (from the journal) plus what it spends now."""

    def __init__(self, budget: Budget, before: Spent) -> None:
        self.budget = budget
        self.before = before
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self.launched = 0
        self.model_calls = 0
        self.tokens = 0
        self.dollars = 0.0
        self.reason: str | None = None

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def spent(self) -> Spent:
        b = self.before
        return Spent(
            b.questions + self.launched,
            b.model_calls + self.model_calls,
            b.tokens + self.tokens,
            b.dollars + self.dollars,
            b.wall_time_s + self.elapsed(),
        )

    def record(self, row: dict[str, Any]) -> None:
        with self._lock:
            self.model_calls += int(row.get("model_calls", 0))
            self.tokens += int(row.get("tokens", 0))
            self.dollars += float(row.get("cost_fresh", 0.0))

    def _reached(self) -> str | None:
        now, cap = self.spent(), self.budget
        checks = [
            ("questions", now.questions, cap.questions),
            ("model_calls", now.model_calls, cap.model_calls),
            ("tokens", now.tokens, cap.tokens),
            ("dollars", now.dollars, cap.dollars),
            ("wall_time_s", now.wall_time_s, cap.wall_time_s),
        ]
        for name, used, limit in checks:
            if limit is not None and used >= limit:
                return f"budget {name} reached ({used:g} of {limit:g})"
        return None

    def take(self) -> bool:
        """True if one more question may start (and counts it); False once a cap is reached."""
        with self._lock:
            if self.reason is None:
                self.reason = self._reached()
            if self.reason is not None:
                return False
            self.launched += 1
            return True
