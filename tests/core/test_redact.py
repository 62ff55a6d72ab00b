"""One definition of "looks like a secret", and the redactors built on it."""

from __future__ import annotations

import logging

import pytest

from workbench.core.redact import REDACTED, RedactingFilter, is_secret_key, redact, redact_text, redact_url, secret_keys


@pytest.mark.parametrize(
    "name",
    [
        "api_key",
        "API_KEY",
        "Api-Key",
        "apiKey",
        "apikey",
        "x-api-key",
        "token",
        "access_token",
        "accessToken",
        "HF_TOKEN",
        "X-Amz-Security-Token",
        "secret",
        "client_secret",
        "secret_value",
        "password",
        "db_passwd",
        "Authorization",
        "proxy-authorization",
        "auth",
        "private_key",
        "credentials",
    ],
)
def test_secret_keys_are_recognised(name: str) -> None:
    assert is_secret_key(name)


@pytest.mark.parametrize(
    "name",
    [
        "temperature",
        "max_tokens",
        "max_completion_tokens",
        "stop_token_ids",
        "top_k",
        "author",
        "cache_key",
        "api_key_env",
    ],
)
def test_ordinary_keys_are_not_secrets(name: str) -> None:
    assert not is_secret_key(name)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://ana:s3cr3t@api.example.com/v1", "https://***@api.example.com/v1"),
        ("http://ghp_abc123@github.com/org/repo.git", "http://***@github.com/org/repo.git"),
        ("postgresql://u:p@ss@db:5432/mlflow", "postgresql://***@db:5432/mlflow"),
        ("https://h/v1/chat?api_key=sk-1&model=m", "https://h/v1/chat?api_key=***&model=m"),
        ("POST /v1?model=m&token=abc#top", "POST /v1?model=m&token=***#top"),
        ("https://maps.example.com/?key=AIzaXYZ", "https://maps.example.com/?key=***"),
        ("connect to https://h:8080/v1 failed (a@b.com)", "connect to https://h:8080/v1 failed (a@b.com)"),
        ("", ""),
    ],
)
def test_redact_url(text: str, expected: str) -> None:
    assert redact_url(text) == expected


def test_redact_url_inside_a_longer_message() -> None:
    message = "ConnectError: https://u:pw@h1/v1 then http://h2/x?access_token=t0k&n=1 both down"
    clean = redact_url(message)
    assert "pw" not in clean and "t0k" not in clean
    assert clean == "ConnectError: https://***@h1/v1 then http://h2/x?access_token=***&n=1 both down"


def test_redact_text_hides_bearer_tokens() -> None:
    assert redact_text("Authorization: Bearer sk-abc.def_1") == "Authorization: Bearer ***"
    assert redact_text("https://u:p@h") == "https://***@h"


def test_secret_keys_finds_nested_paths() -> None:
    data = {"temperature": 0.1, "headers": {"Authorization": "x"}, "extra": [{"api_key": "k"}], "max_tokens": 9}
    assert secret_keys(data) == ["headers.Authorization", "extra.0.api_key"]


def test_redact_copies_and_hides() -> None:
    data = {"base_url": "https://u:p@h/v1", "token": "t", "nested": {"password": "p", "n": [1, "?api_key=k"]}}
    clean = redact(data)
    assert clean == {
        "base_url": f"https://{REDACTED}@h/v1",
        "token": REDACTED,
        "nested": {"password": REDACTED, "n": [1, f"?api_key={REDACTED}"]},
    }
    assert data["token"] == "t"  # the caller's data is not modified


def test_redacting_filter(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("workbench.test_redact")
    caplog.handler.addFilter(RedactingFilter())
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            logger.info("calling %s", "https://u:hunter2@h/v1?api_key=sk-9")
    finally:
        caplog.handler.removeFilter(caplog.handler.filters[-1])
    assert "hunter2" not in caplog.text and "sk-9" not in caplog.text
    assert "https://***@h/v1?api_key=***" in caplog.text
