"""Token estimates for providers that do not report usage, and cost from usage."""

from __future__ import annotations

import re

from workbench.core.schema import Cost

_TOKEN = re.compile(r"\w+|[^\w\s]")


def estimate_tokens(text: str) -> int:
    """Roughly one token per word piece or punctuation mark; ~1.3x words for English."""
    return len(_TOKEN.findall(text))


def cost_of(cost: Cost, tokens_in: int, tokens_out: int) -> float:
    return tokens_in / 1000 * cost.input_per_1k + tokens_out / 1000 * cost.output_per_1k
