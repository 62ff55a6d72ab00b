"""`python -m workbench serve` refuses what it cannot serve with one line and exit 2, before
any server starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.cli import main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers must be 1 or more"),
        (["--max-body-bytes", "0"], "--max-body-bytes must be 1 or more"),
        ([], ""),
    ],
)
def test_refusals_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    missing = tmp_path / "no-bundle"
    assert main(["serve", str(missing), *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
