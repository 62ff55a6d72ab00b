# ruff: noqa: E501  (a table of regexes reads better one per line)
"""Weighted prompt-injection and jailbreak patterns.

Each pattern carries a weight in (0, 1): roughly the probability that a text matching it is an
attack. Weak signals ("system prompt" on its own, a base64 blob) stay below the default
threshold alone and add up with others (noisy-OR in `injection.py`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    label: str
    weight: float
    regex: re.Pattern[str]


def _p(label: str, weight: float, regex: str) -> Pattern:
    return Pattern(label, weight, re.compile(regex, re.IGNORECASE))


_IGNORE = r"\b(?:ignore|disregard|forget|skip|override|overrule|bypass|abandon|drop)\b"
_NOUN = r"(?:instructions?|prompts?|rules|directions?|guidelines|directives?|context|messages?|constraints|commands?)"
_SCOPE = r"(?:previous|prior|above|earlier|preceding|all|any|your|my|system|original|initial|existing|every)"
_GAP = r"[^.?!\n]{0,40}?"
_SECRET = r"(?:system|hidden|initial|original|secret|internal|developer|pre-?prompt|confidential)"

PATTERNS: tuple[Pattern, ...] = (
    _p("ignore-instructions", 0.8, rf"{_IGNORE}{_GAP}\b{_SCOPE}\b{_GAP}\b{_NOUN}\b"),
    _p("ignore-instructions", 0.8, rf"{_IGNORE}{_GAP}\b{_NOUN}\b{_GAP}\b(?:above|before|so far|you were given)\b"),
    _p(
        "disregard-above",
        0.7,
        r"\b(?:ignore|disregard|forget)\s+(?:everything\s+|all\s+)?(?:the\s+|that\s+)?(?:above|before|previous(?:ly)?|said)\b",
    ),
    _p("you-are-now", 0.5, r"\byou\s+are\s+now\b|\bfrom\s+now\s+on,?\s+you\b|\byou\s+(?:are|were)\s+no\s+longer\b"),
    _p(
        "role-play-override",
        0.6,
        r"\b(?:pretend|imagine|role-?play|act|behave|respond)\b[^.?!\n]{0,30}\b(?:you\s+are|you're|to\s+be|as|like)\b"
        r"[^.?!\n]{0,50}\b(?:no|without|unrestricted|unfiltered|uncensored|evil|jailbroken|amoral|rules?|restrictions?"
        r"|limits|limitations|filters?|morals|ethics)\b",
    ),
    _p(
        "unrestricted-persona",
        0.6,
        r"\byou(?:'re|\s+are)\s+(?:now\s+)?(?:an?\s+)?(?:unfiltered|uncensored|unrestricted|jailbroken|evil|amoral)\b",
    ),
    _p("stay-in-character", 0.3, r"\b(?:stay|remain)\s+in\s+character\b"),
    _p(
        "ignore-task",
        0.4,
        r"\b(?:ignore|disregard|forget)\s+(?:the|this|my|your)\s+(?:question|task|context|text|document)\b",
    ),
    _p(
        "no-restrictions",
        0.35,
        r"\b(?:without|no|free\s+(?:of|from)|ignore)\s+(?:any\s+)?(?:restrictions|filters|rules|limitations|guidelines|censorship|ethical|moral)",
    ),
    _p(
        "bypass-safety",
        0.6,
        r"\b(?:bypass|disable|turn\s+off|deactivate|circumvent|evade)\b[^.?!\n]{0,20}\b(?:safety|filters?|guardrails?|restrictions|content\s+polic(?:y|ies)|moderation|censorship)",
    ),
    _p("system-prompt", 0.4, rf"\b{_SECRET}\s+(?:prompt|instructions?|message|rules)\b"),
    _p(
        "reveal-prompt",
        0.6,
        r"\b(?:reveal|show|print|repeat|output|display|tell\s+me|leak|dump|give\s+me|write\s+out)\b"
        rf"[^.?!\n]{{0,30}}\b(?:your\s+(?:\w+\s+)?(?:prompt|instructions?|rules|guidelines|directives)|{_SECRET}\s+(?:prompt|instructions?|message|rules))",
    ),
    _p(
        "reveal-prompt",
        0.6,
        r"\bwhat\s+(?:is|are|were)\s+your\s+(?:\w+\s+)?(?:prompt|instructions?|rules|guidelines|directives)\b",
    ),
    _p("repeat-above", 0.5, r"\brepeat\b[^.?!\n]{0,30}\b(?:above|verbatim|everything\s+before|words\s+before)"),
    _p("dan", 0.35, r"(?-i:\bDAN\b)"),
    _p("do-anything-now", 0.8, r"\bdo\s+anything\s+now\b"),
    _p(
        "special-mode",
        0.75,
        r"\b(?:enable|enter|activate|switch\s+(?:in)?to|turn\s+on|unlock|now\s+in|are\s+in)\s+(?:the\s+)?(?:developer|dev|god|debug|admin|sudo|jailbreak|unrestricted|dan)\s+mode\b",
    ),
    _p("special-mode", 0.3, r"\b(?:developer|god|sudo|jailbreak|unrestricted|dan)\s+mode\b"),
    _p("jailbreak", 0.5, r"\bjail-?br(?:eak|oken)\b"),
    _p(
        "delimiter-injection",
        0.7,
        r"(?:^|\n)\s*(?:#{2,}|={3,}|-{3,}|\*{3,}|\[|<)\s*/?\s*(?:system|assistant|instructions?|inst|sys|developer|admin)\b",
    ),
    _p(
        "chat-template-token",
        0.7,
        r"<\|(?:im_start|im_end|system|assistant|endoftext)\|>|\[/?INST\]|<<\s*/?SYS\s*>>|</?system>",
    ),
    _p(
        "new-instructions", 0.5, r"\b(?:new|updated|real|actual|revised)\s+(?:instructions?|rules|task|directives?)\s*:"
    ),
    _p("instead-say", 0.3, r"\binstead\b[^.?!\n]{0,20}\b(?:say|output|respond|print|write|reply)\b"),
    _p("pwned", 0.5, r"\b(?:pwned|pwn3d|hacked\s+by)\b"),
)

# Long runs of the base64 alphabet; decoded and scanned again in `injection.py`.
BASE64_BLOB = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
BASE64_WEIGHT = 0.3

# Characters attackers insert to split keywords; removed before matching.
INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff\u00ad]")
