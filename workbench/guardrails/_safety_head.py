"""The safety head's file format and its lexical toxicity signal, shared by the check and
`benchmarks/train_safety.py` / `bench_safety.py`.

A head is a `.npz` of plain arrays (loaded with `allow_pickle=False`, so a weights file cannot
run code), holding:

- two logistic regressions over the embedding of the clipped answer, one with the toxicity score
  as an extra feature ("combined") and one without ("embed"), each with the threshold fitted on
  out-of-fold scores of the train split, stored and loaded in the attack head's format
  (`_attack_head.KEYS`, `load_head`);
- the toxicity model itself, `Profanity`: alt-profanity-check 1.9.1's TF-IDF vocabulary and its
  five sigmoid-calibrated linear SVMs (MIT licence), converted to arrays by the train script,
  so that the check needs neither that package nor its pickles at run time.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from workbench.guardrails._attack_head import FORMAT_VERSION, KEYS, Head, load_head, read_arrays

__all__ = ["FORMAT_VERSION", "HEAD_KEYS", "PROFANITY_KEYS", "Profanity", "SafetyHead", "load_safety_head"]

SHIPPED = "safety_head.npz"
HEAD_KEYS = KEYS  # the two heads are stored exactly as the attack head stores its own
PROFANITY_KEYS = ("tox_vocab", "tox_idf", "tox_coef", "tox_intercept", "tox_a", "tox_b")
# scikit-learn's default `token_pattern`, which the vocabulary was built with.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")


@dataclass(frozen=True)
class Profanity:
    """P(offensive) of a text: TF-IDF (l2) -> k linear SVMs -> k sigmoids -> their mean, exactly
    as scikit-learn's `CalibratedClassifierCV(method="sigmoid")` computes it."""

    index: dict[str, int]
    idf: np.ndarray
    coef: np.ndarray  # (k, vocabulary)
    intercept: np.ndarray  # (k,)
    a: np.ndarray  # (k,)
    b: np.ndarray  # (k,)

    def score(self, texts: list[str]) -> np.ndarray:
        out = np.zeros(len(texts))
        for row, text in enumerate(texts):
            counts = Counter(i for t in _TOKEN.findall(text.lower()) if (i := self.index.get(t)) is not None)
            if not counts:
                decision = self.intercept
            else:
                cols = np.fromiter(counts, dtype=np.int64)
                values = np.fromiter(counts.values(), dtype=np.float64) * self.idf[cols]
                values /= np.linalg.norm(values)
                decision = self.coef[:, cols] @ values + self.intercept
            out[row] = float(np.mean(1.0 / (1.0 + np.exp(self.a * decision + self.b))))
        return out


@dataclass(frozen=True)
class SafetyHead:
    """The head the check uses and the toxicity model that feeds it."""

    head: Head
    profanity: Profanity


def shipped_path() -> Path:
    return Path(str(resources.files("workbench.guardrails") / "data" / SHIPPED))


def load_safety_head(path: str | Path | None, *, toxicity: bool) -> SafetyHead:
    """The combined (`toxicity=True`) or embedding-only head from `path` (default: shipped)."""
    file = Path(path) if path is not None else shipped_path()
    arrays = read_arrays(file, PROFANITY_KEYS, "safety head")
    profanity = Profanity(
        index={str(w): i for i, w in enumerate(arrays["tox_vocab"].tolist())},
        idf=np.asarray(arrays["tox_idf"], dtype=np.float64),
        coef=np.asarray(arrays["tox_coef"], dtype=np.float64),
        intercept=np.asarray(arrays["tox_intercept"], dtype=np.float64),
        a=np.asarray(arrays["tox_a"], dtype=np.float64),
        b=np.asarray(arrays["tox_b"], dtype=np.float64),
    )
    return SafetyHead(load_head(file, heuristics=toxicity), profanity)


def save_safety_head(path: str | Path, **arrays: object) -> None:
    """Write a head file; every key of `HEAD_KEYS` and `PROFANITY_KEYS` must be given.

    Written as `np.savez_compressed` would, but with fixed member timestamps, so that the same
    arrays always give the same bytes (the train script reproduces the shipped file exactly).
    """
    keys = HEAD_KEYS + PROFANITY_KEYS
    missing = set(keys) - set(arrays)
    if missing:
        raise ValueError(f"missing head arrays: {sorted(missing)}")
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in keys:
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(arrays[key]), allow_pickle=False)
            zf.writestr(info, buffer.getvalue())
