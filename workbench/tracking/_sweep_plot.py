"""The Pareto plot of a sweep: quality against cost (or latency), the front joined, the winner starred.

matplotlib is imported here, on first use, with the Agg canvas; pyplot (and its global figure
registry) is never touched, so plotting is safe in a server, a thread or a notebook.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from workbench.core.errors import MissingDependency

if TYPE_CHECKING:
    import pandas as pd


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def pareto_png(
    leaderboard: pd.DataFrame,
    axes: tuple[str, str],
    *,
    pareto: Sequence[str],
    winner: str | None,
    recommended: str | None = None,
    title: str = "",
) -> bytes:
    """PNG bytes of the plot: x = `axes[1]` (cost or latency), y = `axes[0]` (quality)."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise MissingDependency("matplotlib", "tracking") from exc
    import io

    quality, cost = axes
    points: list[tuple[str, float, float]] = []
    if {"variant", quality, cost} <= set(leaderboard.columns):
        for row in leaderboard[["variant", quality, cost]].itertuples(index=False):
            x, y = _number(row[2]), _number(row[1])
            if x is not None and y is not None:
                points.append((str(row[0]), x, y))
    front = sorted((p for p in points if p[0] in set(pareto)), key=lambda p: p[1])

    figure = Figure(figsize=(7, 5), dpi=100)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    others = [p for p in points if p[0] not in set(pareto)]
    ax.scatter([p[1] for p in others], [p[2] for p in others], color="#9aa5b1", label="variant", zorder=2)
    if front:
        ax.plot([p[1] for p in front], [p[2] for p in front], color="#d1495b", linewidth=1.5, zorder=3)
        ax.scatter([p[1] for p in front], [p[2] for p in front], color="#d1495b", label="Pareto front", zorder=4)
    for name, x, y in points:
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    for mark, size, color, label in ((winner, 260, "#edae49", "winner"), (recommended, 140, "#00798c", "recommended")):
        chosen = [p for p in points if p[0] == mark]
        if mark and chosen and not (label == "recommended" and mark == winner):
            _, x, y = chosen[0]
            ax.scatter([x], [y], marker="*", s=size, color=color, edgecolor="black", label=label, zorder=5)
    if not points:
        ax.text(0.5, 0.5, f"no variant has both {quality} and {cost}", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel(cost)
    ax.set_ylabel(quality)
    ax.set_title(title or f"{quality} vs {cost}")
    ax.grid(True, alpha=0.3)
    if points:
        ax.legend(loc="best", fontsize=8)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()
