"""`python -m workbench keys create|list|revoke`, and `serve`'s auth options: a key is printed
once and stored as a hash; mistakes are one line and exit 2; no auth means loopback only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import assert_one_line_error, run_cli
from workbench.serve.command import is_loopback
from workbench.serve.keys import load_keys


def test_create_prints_the_key_once_and_list_never_shows_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.yaml"
    code, out, err = run_cli(
        capsys, "keys", "create", "--team", "blue", "--rpm", "60", "--tpm", "6000", "--keys-file", str(path)
    )
    assert code == 0, err
    key = out.strip()
    assert key.startswith("wb-") and len(out.splitlines()) == 1 and "shown only once" in err
    (key_id,) = load_keys(path).keys
    assert key.startswith(f"wb-{key_id}-") and key not in path.read_text()

    code, out, _ = run_cli(
        capsys, "keys", "create", "--team", "red", "--daily-tokens", "1000", "--keys-file", str(path)
    )
    assert code == 0
    code, out, _ = run_cli(capsys, "keys", "list", "--keys-file", str(path))
    assert code == 0 and key_id in out and "blue" in out and "red" in out and out.count("active") == 2
    assert key not in out and key.split("-", 2)[2] not in out
    code, out, _ = run_cli(capsys, "keys", "list", "--keys-file", str(path), "--json")
    rows = json.loads(out)
    assert {r["team"] for r in rows} == {"blue", "red"} and all("sha256" not in r for r in rows)


def test_revoke_marks_the_key_and_is_idempotent(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.json"
    run_cli(capsys, "keys", "create", "--team", "blue", "--keys-file", str(path))
    (key_id,) = load_keys(path).keys
    for _ in range(2):
        code, out, err = run_cli(capsys, "keys", "revoke", key_id, "--keys-file", str(path))
        assert code == 0 and f"revoked key {key_id}" in out, err
    assert load_keys(path).keys[key_id].revoked is not None
    _, out, _ = run_cli(capsys, "keys", "list", "--keys-file", str(path))
    assert "revoked" in out and "active" not in out


@pytest.mark.parametrize(
    ("argv", "needles"),
    [
        (["revoke", "nope"], ["no key with id 'nope'"]),
        (["list"], ["keys file not found"]),
        (["create", "--team", "blue", "--rpm", "0"], ["--rpm must be 1 or more"]),
        (["create", "--team", " "], ["--team must not be empty"]),
    ],
)
def test_mistakes_are_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], needles: list[str]
) -> None:
    path = tmp_path / "keys.yaml"
    if argv[0] == "revoke":
        run_cli(capsys, "keys", "create", "--team", "blue", "--keys-file", str(path))
    code, _, err = run_cli(capsys, "keys", *argv, "--keys-file", str(path))
    assert_one_line_error(code, err, *needles)


def test_a_corrupt_keys_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "keys.yaml"
    path.write_text("keys: {abc: {team: blue}}\n")
    code, _, err = run_cli(capsys, "keys", "list", "--keys-file", str(path))
    assert_one_line_error(code, err, "keys.abc.")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("10.1.2.3", False),
        ("example.com", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_serve_refuses_a_public_host_without_auth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Refused before the bundle is even opened (it does not exist here).
    code, _, err = run_cli(capsys, "serve", str(tmp_path / "bundle"), "--host", "0.0.0.0")
    assert_one_line_error(code, err, "--host 0.0.0.0 is not loopback and no auth is configured", "--keys")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--keys", "missing.yaml"], "keys file not found"),
        (["--jwt-secret-env", "WB_UNSET_SECRET_FOR_TEST"], "WB_UNSET_SECRET_FOR_TEST: that environment variable"),
        (["--jwt-public-key", "missing.pem"], "--jwt-public-key"),
        (["--jwt-audience", "workbench"], "need --jwt-secret-env or --jwt-public-key"),
    ],
)
def test_serve_auth_options_fail_fast(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, args: list[str], needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "serve", str(tmp_path / "bundle"), "--host", "0.0.0.0", *args)
    assert_one_line_error(code, err, needle)


def test_serve_with_keys_on_a_public_host_gets_to_the_bundle(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.yaml"
    run_cli(capsys, "keys", "create", "--team", "blue", "--keys-file", str(keys))
    code, _, err = run_cli(capsys, "serve", str(tmp_path / "bundle"), "--host", "0.0.0.0", "--keys", str(keys))
    assert code == 2 and "not loopback" not in err  # auth is on: the next refusal is the missing bundle
