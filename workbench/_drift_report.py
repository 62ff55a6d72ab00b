"""The drift report folder: `report.json` (every figure), `report.md` (the summary a person
reads) and PNG plots.

matplotlib is imported on first use with the Agg canvas and never through pyplot, whose
global figure registry is unsafe in a server or a thread.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from workbench.core.errors import DatasetError, MissingDependency
from workbench.evaluation.drift import DriftTest

_REF, _CUR = "#3d7ea6", "#d1495b"


def _figure(width: float, height: float) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency("matplotlib", "tracking") from exc
    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _embeddings_png(test: DriftTest, vectors: dict[str, np.ndarray], path: Path) -> None:
    """The two samples on their first two principal components, and the permutation null with
    the observed MMD²."""
    ref, cur = vectors["reference"], vectors["current"]
    pooled = np.vstack([ref, cur]).astype(np.float64)
    centred = pooled - pooled.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    xy = centred @ vt[:2].T
    figure = _figure(11, 4.5)
    ax, hist = figure.subplots(1, 2)
    ax.scatter(xy[: len(ref), 0], xy[: len(ref), 1], s=8, alpha=0.5, color=_REF, label="reference")
    ax.scatter(xy[len(ref) :, 0], xy[len(ref) :, 1], s=8, alpha=0.5, color=_CUR, label="current")
    ax.set(title="query embeddings (PCA)", xlabel="PC1", ylabel="PC2")
    ax.legend()
    null = test.detail.get("null", [])
    hist.hist(null, bins=40, color="#9aa5b1")
    hist.axvline(test.statistic, color=_CUR, linewidth=2, label=f"observed, p={test.p_value:.3g}")
    hist.set(title="MMD² under permutation", xlabel="MMD²", ylabel="permutations")
    hist.legend()
    figure.tight_layout()
    figure.savefig(path)


def _shares_png(tests: list[DriftTest], path: Path) -> None:
    figure = _figure(max(6.0, 1.2 * sum(len(t.detail["reference"]) for t in tests)), 4.5)
    ax = figure.add_subplot()
    labels, ref, cur = [], [], []
    for test in tests:
        for category, share in test.detail["reference"].items():
            labels.append(f"{test.name}\n{category}")
            ref.append(share)
            cur.append(test.detail["current"][category])
    x = np.arange(len(labels))
    ax.bar(x - 0.2, ref, width=0.4, color=_REF, label="reference")
    ax.bar(x + 0.2, cur, width=0.4, color=_CUR, label="current")
    ax.set_xticks(x, labels, fontsize=7, rotation=45, ha="right")
    ax.set(title="shares", ylabel="share of questions", ylim=(0, 1))
    ax.legend()
    figure.tight_layout()
    figure.savefig(path)


def _metrics_png(tests: list[DriftTest], frames: dict[str, Any], path: Path) -> None:
    """Empirical CDFs, one panel per metric."""
    cols = min(3, len(tests))
    rows = -(-len(tests) // cols)
    figure = _figure(4.2 * cols, 3.3 * rows)
    axes = np.atleast_1d(figure.subplots(rows, cols)).ravel()
    for ax, test in zip(axes, tests, strict=False):
        column = test.name.removeprefix("metric.")
        for side, color in (("reference", _REF), ("current", _CUR)):
            values = np.sort(np.asarray(frames[side][column], dtype=np.float64))
            values = values[np.isfinite(values)]
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post", color=color, label=side)
        ax.set_title(f"{column}: KS={test.statistic:.2f} p={test.p_value:.3g}", fontsize=9)
    for ax in axes[len(tests) :]:
        ax.set_visible(False)
    axes[0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path)


def _markdown(data: dict[str, Any]) -> str:
    ref, cur, threshold = data["reference"], data["current"], data["threshold"]
    verdict = "**Drift flagged**: " + ", ".join(data["flagged_tests"]) if data["flagged"] else "No drift flagged."
    lines = [
        "# Drift report",
        "",
        f"- reference: `{ref['source']}` ({ref['kind']}, {ref['rows']} questions)",
        f"- current: `{cur['source']}` ({cur['kind']}, {cur['rows']} questions)",
        f"- flagged when the Holm-adjusted p < {threshold['alpha']} and the effect ≥ {threshold['min_effect']}",
        f"- {data['created_at']}",
        "",
        verdict,
        "",
        "| test | method | effect | p | adjusted p | flagged | n ref | n cur |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t in data["tests"]:
        lines.append(
            f"| {t['name']} | {t['method']} | {t['effect']:.3f} | {t['p_value']:.3g} | {t['p_adjusted']:.3g} "
            f"| {'yes' if t['flagged'] else 'no'} | {t['n_reference']} | {t['n_current']} |"
        )
    if data["skipped"]:
        lines += ["", "Not compared:", *(f"- {s['name']}: {s['reason']}" for s in data["skipped"])]
    lines += [
        "",
        "Effects: MMD for embeddings, total variation distance for shares, the KS statistic for metrics.",
        "",
    ]
    return "\n".join(lines)


def write_report(
    data: dict[str, Any],
    tests: list[DriftTest],
    vectors: dict[str, np.ndarray],
    out: Path,
    frames: dict[str, Any] | None = None,
) -> list[Path]:
    """Write the folder; returns the files written (JSON and Markdown first, then plots)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        files = [out / "report.json", out / "report.md"]
        files[0].write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
        files[1].write_text(_markdown(data), encoding="utf-8")
        embedding = next(t for t in tests if t.kind == "embeddings")
        _embeddings_png(embedding, vectors, out / "embeddings.png")
        files.append(out / "embeddings.png")
        shares = [t for t in tests if t.kind == "shares"]
        if shares:
            _shares_png(shares, out / "shares.png")
            files.append(out / "shares.png")
        metrics = [t for t in tests if t.kind == "metric"]
        if metrics and frames is not None:
            _metrics_png(metrics, frames, out / "metrics.png")
            files.append(out / "metrics.png")
    except OSError as exc:
        raise DatasetError(f"{out}: cannot write the report ({exc.strerror or exc})") from exc
    return files
