"""Train the `safety` check's head from `datasets/safety/train.jsonl` and write the shipped weights.

    .venv/bin/python benchmarks/train_safety.py [--out workbench/guardrails/data/safety_head.npz]

Features: the quickstart embedder's vector of the clipped answer (`_attack_head.clip`, with a
longer window than for questions: answers are longer, and MiniLM reads ~256 word pieces), plus
alt-profanity-check's P(offensive) for the combined head. The toxicity model is converted from
the package's pickles to plain arrays (`_safety_head.Profanity`), checked to give the package's
own probabilities, and shipped in the same file. Two logistic regressions (scikit-learn, L2, C
picked by grouped 5-fold cross-validation on log loss). Each threshold is the lowest that passes,
out of fold, 99% of the repository's benign answers and 97% of the look-alikes. PyRIT's benign
answers (refusals and safe completions to harmful requests) are trained on but do not set the
threshold: passing 99% of them would cost three quarters of the recall. Only the
train split is read; the test split is for `bench_safety.py`. Same data, same bytes: a re-run
reproduces the shipped file exactly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))
from train_guard import embed, final_head, head_arrays, read, select_c  # noqa: E402

from workbench.guardrails._attack_head import clip  # noqa: E402
from workbench.guardrails._safety_head import (  # noqa: E402
    Profanity,
    save_safety_head,
    shipped_path,
)

HEAD_CHARS, TAIL_CHARS = 768, 256
LOOKALIKE_WEIGHT = 2.0
BENIGN_PASS, LOOKALIKE_PASS = 0.99, 0.97


def fit(x: np.ndarray, y: np.ndarray, weights: np.ndarray, groups: np.ndarray, sets: dict[str, np.ndarray]) -> dict:
    """The head with the best C by grouped cross-validation, and its threshold from the out-of-fold
    scores: the lowest passing `BENIGN_PASS` of `sets["benign"]` and `LOOKALIKE_PASS` of
    `sets["lookalike"]`."""
    c, oof = select_c(x, y, weights, groups)
    benign, looks = oof[sets["benign"]], oof[sets["lookalike"]]
    threshold = max(np.quantile(benign, BENIGN_PASS), np.quantile(looks, LOOKALIKE_PASS))
    threshold = float(min(max(threshold, 0.05), 0.95))
    recall = float((oof[y == 1] >= threshold).mean())
    hard = float((oof[(y == 0) & ~sets["benign"] & ~sets["lookalike"]] < threshold).mean())
    print(f"  chose C={c}, threshold {threshold:.3f}: out-of-fold recall {recall:.3f}, benign pass ", end="")
    print(
        f"{(benign < threshold).mean():.3f}, look-alike pass {(looks < threshold).mean():.3f}, PyRIT benign {hard:.3f}"
    )
    return final_head(x, y, weights, c, threshold)


def profanity_arrays() -> dict[str, np.ndarray]:
    """alt-profanity-check's vectorizer and calibrated SVMs as plain arrays."""
    try:
        from profanity_check import profanity_check as package
    except ImportError as exc:
        raise SystemExit("error: pip install 'workbench[guard-data]' (alt-profanity-check) to train") from exc
    vectorizer, model = package.vectorizer, package.model
    vocab = sorted(vectorizer.vocabulary_, key=vectorizer.vocabulary_.__getitem__)
    folds = model.calibrated_classifiers_
    return {
        "tox_vocab": np.array(vocab),
        "tox_idf": vectorizer.idf_.astype(np.float64),
        "tox_coef": np.stack([f.estimator.coef_[0] for f in folds]).astype(np.float64),
        "tox_intercept": np.array([f.estimator.intercept_[0] for f in folds], dtype=np.float64),
        "tox_a": np.array([f.calibrators[0].a_ for f in folds], dtype=np.float64),
        "tox_b": np.array([f.calibrators[0].b_ for f in folds], dtype=np.float64),
    }


def check_profanity(arrays: dict[str, np.ndarray], texts: list[str]) -> Profanity:
    """The converted model, after checking it agrees with the package on `texts`."""
    from profanity_check import predict_prob

    model = Profanity(
        index={str(w): i for i, w in enumerate(arrays["tox_vocab"].tolist())},
        idf=arrays["tox_idf"],
        coef=arrays["tox_coef"],
        intercept=arrays["tox_intercept"],
        a=arrays["tox_a"],
        b=arrays["tox_b"],
    )
    gap = float(np.abs(model.score(texts) - predict_prob(texts)).max())
    if gap > 1e-9:
        raise SystemExit(f"error: the converted toxicity model differs from the package by {gap}")
    print(f"toxicity model: {len(arrays['tox_vocab'])} words, {len(arrays['tox_a'])} folds, max gap {gap:.1e}")
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=Path, default=REPO / "datasets" / "safety" / "train.jsonl")
    parser.add_argument("--out", type=Path, default=shipped_path())
    parser.add_argument("--cache-dir", type=Path, default=REPO / ".workbench" / "safety")
    args = parser.parse_args()
    rows = read(args.train)
    texts = [r["text"] for r in rows]
    y = np.array([r["label"] for r in rows], dtype=int)
    groups = np.array([r["group"] for r in rows])
    lookalike = np.array([r["kind"] == "lookalike" for r in rows])
    sets = {
        "benign": np.array([r["kind"] == "benign" and not r["source"].startswith("pyrit") for r in rows]),
        "lookalike": lookalike,
    }
    weights = np.where(y == 1, 0.5 / y.mean(), 0.5 / (1 - y.mean())) * np.where(lookalike, LOOKALIKE_WEIGHT, 1.0)
    tox_arrays = profanity_arrays()
    toxicity = check_profanity(tox_arrays, texts).score(texts)
    # The shipped safety head was trained on the quickstart's onnx vectors (the attack head on torch's).
    vectors = embed([clip(t, HEAD_CHARS, TAIL_CHARS) for t in texts], args.cache_dir, backend="onnx")
    print(f"{len(rows)} rows ({y.sum()} harmful), {vectors.shape[1]} dimensions")
    from threadpoolctl import threadpool_limits

    # One BLAS thread: with several, sums are ordered by the scheduler and the solver's last
    # digits (and so the file's bytes) change from run to run.
    with threadpool_limits(1):
        print("embedding only:")
        embed_head = fit(vectors, y, weights, groups, sets)
        print("embedding + toxicity:")
        combined = fit(np.hstack([vectors, toxicity[:, None]]), y, weights, groups, sets)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    arrays = head_arrays(vectors.shape[1], embed_head, combined, HEAD_CHARS, TAIL_CHARS)
    save_safety_head(args.out, **arrays, **tox_arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
