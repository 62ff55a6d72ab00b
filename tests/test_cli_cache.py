"""`python -m workbench cache info|clear` on a real cache file."""

from pathlib import Path

import pytest

from workbench.cli import main
from workbench.core.cache import SqliteStageCache


def test_cache_info_and_clear(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "c.sqlite"
    cache = SqliteStageCache(path)
    cache.put("k1", {"answer": "a"}, "generator")
    cache.put("k2", {"chunks": []}, "retriever")
    cache.close()
    assert main(["cache", "info", "--path", str(path)]) == 0
    out = capsys.readouterr().out
    assert "2 entries" in out and "generator" in out and "retriever" in out
    assert main(["cache", "clear", "--stage", "generator", "--path", str(path)]) == 0
    assert "removed 1 entries of stage generator" in capsys.readouterr().out
    assert len(SqliteStageCache(path)) == 1


def test_cache_info_without_a_cache_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["cache", "info", "--path", str(tmp_path / "none.sqlite")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no stage cache at") and "\n" not in err
