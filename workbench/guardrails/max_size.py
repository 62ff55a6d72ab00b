"""`max_size`: the text is over a character limit."""

from __future__ import annotations

from workbench.core.schema import MaxSizeCheck
from workbench.core.state import RequestState
from workbench.guardrails.base import CheckResult, GuardCheck

_SUBJECT = {"input": "question", "output": "answer"}


class MaxSizeGuard(GuardCheck):
    """Triggers when the text is longer than `max_chars`; masking truncates to the limit."""

    name = "max_size"
    config: MaxSizeCheck

    def inspect(self, text: str, state: RequestState) -> CheckResult:
        size, limit = len(text), self.config.max_chars
        subject = _SUBJECT.get(self.context.side, "text")
        detail = f"{subject} is {size:,} characters; the limit is {limit:,}"
        if size <= limit:
            return CheckResult(False, detail, score=float(size))
        return CheckResult(True, detail, masked_text=text[:limit], score=float(size))
