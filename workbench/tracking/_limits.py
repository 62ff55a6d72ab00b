"""Fit params, metrics and tags into MLflow's limits without losing the run, or a secret.

MLflow rejects a param value over 6000 chars, a key over 250 chars or with characters
outside `[/\\w.\\- :]`, and more than 100 params/tags or 1000 metrics in one batch.

Param and tag values are redacted on the way: a URL's credentials (`https://user:pass@host`,
`?api_key=...`) become `***`, and so does the whole value of a key that names a secret
(`...api_key`, `...token`, `...Authorization`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from typing import Any, TypeVar

from workbench.core.config import flatten
from workbench.core.redact import REDACTED, is_secret_key, redact_url

MAX_KEY = 250
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
PARAMS_PER_BATCH = 100
TAGS_PER_BATCH = 100
METRICS_PER_BATCH = 1000

_BAD_KEY_CHARS = re.compile(r"[^/\w.\- :]")
_ELLIPSIS = "...[truncated]"

T = TypeVar("T")


def truncate(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return text[: limit - len(_ELLIPSIS)] + _ELLIPSIS


def safe_key(key: str, taken: set[str]) -> str:
    """A valid MLflow key, unique within `taken` (a short hash marks a changed key)."""
    clean = _BAD_KEY_CHARS.sub("_", str(key)) or "_"
    if clean == key and len(clean) <= MAX_KEY and clean not in taken:
        taken.add(clean)
        return clean
    digest = hashlib.sha1(str(key).encode()).hexdigest()[:8]
    clean = clean if len(clean) <= MAX_KEY and clean not in taken else f"{clean[: MAX_KEY - 9]}-{digest}"
    taken.add(clean)
    return clean


def _as_text(value: Any) -> str:
    if value is None:
        return "None"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_as_text(v) for v in value) + "]"
    return str(value)


def safe_value(key: str, value: Any) -> str:
    """The text to log for `value`: `***` under a secret-looking key (judged by the last dotted
    part, `models.gpt.params.api_key`), else the text with URL credentials redacted."""
    if value is not None and is_secret_key(str(key).rsplit(".", 1)[-1]):
        return REDACTED
    return redact_url(_as_text(value))


def param_items(params: Mapping[str, Any]) -> dict[str, str]:
    """Flatten nested params to dotted keys and make every key and value fit MLflow, redacted."""
    taken: set[str] = set()
    return {safe_key(k, taken): truncate(safe_value(k, v), MAX_PARAM_VALUE) for k, v in flatten(dict(params)).items()}


def tag_items(tags: Mapping[str, Any]) -> dict[str, str]:
    """Valid tag keys and redacted values."""
    taken: set[str] = set()
    return {safe_key(k, taken): truncate(safe_value(k, v), MAX_TAG_VALUE) for k, v in tags.items()}


def metric_items(metrics: Mapping[str, Any]) -> dict[str, float]:
    """Valid keys and float values; None is skipped, NaN/inf are kept (MLflow stores them)."""
    taken: set[str] = set()
    out: dict[str, float] = {}
    for k, v in metrics.items():
        if v is None:
            continue
        out[safe_key(k, taken)] = float(v)
    return out


def batches(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
