"""Fusion math on hand-made rankings."""

from __future__ import annotations

import pytest

from workbench.core.errors import ConfigError
from workbench.retrieval.fusion import minmax, rrf, weighted


def test_rrf_sums_reciprocal_ranks() -> None:
    bm25 = [("a", 12.0), ("b", 7.0), ("c", 1.0)]
    dense = [("c", 0.9), ("a", 0.8), ("d", 0.1)]
    fused = dict(rrf([bm25, dense], k=60))
    assert fused["a"] == pytest.approx(1 / 61 + 1 / 62)
    assert fused["c"] == pytest.approx(1 / 63 + 1 / 61)
    assert fused["b"] == pytest.approx(1 / 62)
    assert fused["d"] == pytest.approx(1 / 63)
    assert [item for item, _ in rrf([bm25, dense], k=60)] == ["a", "c", "b", "d"]


def test_rrf_ignores_score_scale_and_small_k_favours_top_ranks() -> None:
    one = [("x", 1e9), ("y", 1e-9)]
    two = [("y", 0.5), ("z", 0.4)]
    assert rrf([one, two], k=1)[0][0] == "y"  # 1/3 + 1/2 beats 1/2
    with pytest.raises(ConfigError):
        rrf([one], k=0)


def test_weighted_min_max_normalises_each_ranking() -> None:
    bm25 = [("a", 30.0), ("b", 20.0), ("c", 10.0)]
    dense = [("c", 0.9), ("b", 0.7), ("d", 0.5)]
    fused = dict(weighted([bm25, dense], [0.25, 0.75]))
    assert fused["a"] == pytest.approx(0.25 * 1.0)
    assert fused["b"] == pytest.approx(0.25 * 0.5 + 0.75 * 0.5)
    assert fused["c"] == pytest.approx(0.25 * 0.0 + 0.75 * 1.0)
    assert fused["d"] == pytest.approx(0.0)
    assert [i for i, _ in weighted([bm25, dense], [0.25, 0.75])] == ["c", "b", "a", "d"]
    assert weighted([bm25, dense], [1.0, 0.0])[0][0] == "a"


def test_minmax_edge_cases() -> None:
    assert minmax([]) == {}
    assert minmax([("only", 3.0)]) == {"only": 1.0}
    assert minmax([("a", 2.0), ("b", 2.0)]) == {"a": 1.0, "b": 1.0}
    with pytest.raises(ConfigError):
        weighted([[("a", 1.0)]], [0.5, 0.5])
