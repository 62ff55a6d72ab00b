"""`injection`: weighted prompt-injection / jailbreak heuristics with a score in [0, 1]."""

from __future__ import annotations

import base64
import binascii
import unicodedata

from workbench.core.schema import InjectionCheck
from workbench.core.state import RequestState
from workbench.guardrails._injection_patterns import BASE64_BLOB, BASE64_WEIGHT, INVISIBLE, PATTERNS
from workbench.guardrails.base import CheckResult, GuardCheck

MASK = "<REDACTED_INSTRUCTION>"


def normalise(text: str) -> str:
    """NFKC-fold look-alike characters and drop invisible ones that split keywords."""
    return INVISIBLE.sub("", unicodedata.normalize("NFKC", text))


def _decoded_blobs(text: str) -> list[str]:
    """Base64 runs in `text` that decode to mostly printable UTF-8 text."""
    out = []
    for match in BASE64_BLOB.finditer(text):
        blob = match.group(0)
        try:
            raw = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        if decoded and sum(c.isprintable() or c.isspace() for c in decoded) / len(decoded) > 0.9:
            out.append(decoded)
    return out


def score_injection(text: str, _depth: int = 0) -> tuple[float, list[str], list[tuple[int, int]]]:
    """Noisy-OR of the weights of the matched patterns: (score, labels, spans in normalised text).

    One weight per label, so a pattern repeated ten times does not count ten times.
    """
    text = normalise(text)
    weights: dict[str, float] = {}
    spans: list[tuple[int, int]] = []
    for pattern in PATTERNS:
        for match in pattern.regex.finditer(text):
            weights[pattern.label] = max(weights.get(pattern.label, 0.0), pattern.weight)
            spans.append(match.span())
    if _depth == 0:
        for decoded in _decoded_blobs(text):
            weights["base64-blob"] = BASE64_WEIGHT
            inner, labels, _ = score_injection(decoded, _depth + 1)
            if inner > 0:
                weights[f"base64({'+'.join(labels)})"] = inner
        spans.extend(m.span() for m in BASE64_BLOB.finditer(text) if "base64-blob" in weights)
    survive = 1.0
    for w in weights.values():
        survive *= 1.0 - w
    return 1.0 - survive, sorted(weights), spans


def _mask_spans(text: str, spans: list[tuple[int, int]]) -> str:
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    out, last = [], 0
    for start, end in merged:
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


class InjectionGuard(GuardCheck):
    """Scores the text for prompt injection; triggers at `score >= threshold`.

    Masking replaces the matched spans with `<REDACTED_INSTRUCTION>`.
    """

    name = "injection"
    config: InjectionCheck

    def inspect(self, text: str, state: RequestState) -> CheckResult:
        score, labels, spans = score_injection(text)
        threshold = self.config.threshold
        triggered = score >= threshold
        signals = ", ".join(labels) if labels else "none"
        op = ">=" if triggered else "<"
        detail = f"injection score {score:.2f} {op} {threshold:.2f} (signals: {signals})"
        masked = _mask_spans(normalise(text), spans) if triggered else None
        return CheckResult(triggered, detail, masked_text=masked, score=score)
