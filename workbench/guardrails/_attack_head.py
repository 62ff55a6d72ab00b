"""The attack head's file format and features, shared by the check and `benchmarks/train_guard.py`.

A head is a `.npz` of plain arrays (loaded with `allow_pickle=False`, so a weights file cannot
run code): two logistic regressions over the embedding of the clipped text, one with the
injection heuristics' score as an extra feature ("combined") and one without ("embed"), each
with the threshold fitted on out-of-fold scores of the train split.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from workbench.core.errors import ConfigError

FORMAT_VERSION = 1
SHIPPED = "attack_head.npz"
KEYS = (
    "format_version",
    "embedder",
    "dim",
    "head_chars",
    "tail_chars",
    "coef_combined",
    "intercept_combined",
    "threshold_combined",
    "coef_embed",
    "intercept_embed",
    "threshold_embed",
)


def clip(text: str, head_chars: int, tail_chars: int) -> str:
    """The part of `text` the head reads: all of a short text; the start and end of a long one.

    Jailbreak wrappers announce themselves at the start and carry the request at the end, and
    embedding cost grows with length; questions are short, so they are embedded as they are
    (and the router then reuses the embedder's cached vector).
    """
    if len(text) <= head_chars + tail_chars:
        return text
    return f"{text[:head_chars]} ... {text[-tail_chars:]}"


@dataclass(frozen=True)
class Head:
    embedder: str
    dim: int
    head_chars: int
    tail_chars: int
    coef: np.ndarray
    intercept: float
    threshold: float
    uses_heuristics: bool

    def score(self, vectors: np.ndarray, heuristic: np.ndarray | None = None) -> np.ndarray:
        """P(attack) for each row of `vectors` (n, dim), with `heuristic` (n,) if the head uses it."""
        features = vectors if heuristic is None else np.hstack([vectors, heuristic[:, None]])
        z = features.astype(np.float64) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-z))  # type: ignore[no-any-return]


def shipped_path() -> Path:
    return Path(str(resources.files("workbench.guardrails") / "data" / SHIPPED))


def read_arrays(file: Path, keys: Iterable[str], what: str) -> dict[str, np.ndarray]:
    """The arrays `keys` of a weights file, loaded with pickle off (a weights file cannot run
    code); a missing file or array is a `ConfigError` naming `what`."""
    try:
        with np.load(file, allow_pickle=False) as data:
            return {key: data[key] for key in keys}
    except FileNotFoundError as exc:
        raise ConfigError(f"{what} not found: {file}") from exc
    except (KeyError, ValueError, OSError) as exc:
        article = "an" if what[0] in "aeiou" else "a"
        raise ConfigError(f"{file} is not {article} {what} file ({exc})") from exc


def load_head(path: str | Path | None, *, heuristics: bool) -> Head:
    """The combined (`heuristics=True`) or embedding-only head from `path` (default: shipped)."""
    file = Path(path) if path is not None else shipped_path()
    arrays = read_arrays(file, KEYS, "attack head")
    if int(arrays["format_version"]) != FORMAT_VERSION:
        raise ConfigError(f"{file}: attack head format {int(arrays['format_version'])}, expected {FORMAT_VERSION}")
    kind = "combined" if heuristics else "embed"
    return Head(
        embedder=str(arrays["embedder"]),
        dim=int(arrays["dim"]),
        head_chars=int(arrays["head_chars"]),
        tail_chars=int(arrays["tail_chars"]),
        coef=np.asarray(arrays[f"coef_{kind}"], dtype=np.float64),
        intercept=float(arrays[f"intercept_{kind}"]),
        threshold=float(arrays[f"threshold_{kind}"]),
        uses_heuristics=heuristics,
    )


def save_head(path: str | Path, **arrays: object) -> None:
    """Write a head file; every key of `KEYS` must be given."""
    missing = set(KEYS) - set(arrays)
    if missing:
        raise ValueError(f"missing head arrays: {sorted(missing)}")
    np.savez_compressed(path, **{key: np.asarray(arrays[key]) for key in KEYS})  # type: ignore[arg-type]
