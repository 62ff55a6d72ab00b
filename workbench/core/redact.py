"""Keep secrets out of errors, logs, MLflow and files.

- `redact_url(text)`: in any text, hide the credentials of every URL (`https://user:pass@host`
  becomes `https://***@host`) and the values of secret query parameters (`?api_key=...`,
  `&token=...`), with or without a scheme in front.
- `redact_text(text)`: `redact_url` plus `Bearer <token>` values, for error messages.
- `is_secret_key(name)`: whether a mapping key names a secret (`api_key`, `X-Api-Key`,
  `accessToken`, `client_secret`, `Authorization`, ...). `max_tokens`, `stop_token_ids` and
  `api_key_env` (the name of an environment variable) are not secrets.
- `secret_keys(data)`: the dotted paths of every secret-looking key in nested data.
- `redact(data)`: a copy of nested data with secret keys' values hidden and URLs redacted.

Every layer may use these: they live in `core` so that models, tracking and the CLI share one
definition of "looks like a secret".
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

__all__ = ["REDACTED", "RedactingFilter", "is_secret_key", "redact", "redact_text", "redact_url", "secret_keys"]

REDACTED = "***"

# Unambiguous wherever they appear in a key.
_SECRET_PARTS = frozenset(
    {"secret", "password", "passwd", "passphrase", "authorization", "credential", "credentials", "apikey", "cookie"}
)
# Secrets when they end the key: `access_token`, `auth`, but not `token_limit` or `stop_token_ids`.
_SECRET_LAST = frozenset({"token", "auth", "bearer", "pwd", "jwt"})
# `<x>_key` is a secret for these x: `api_key`, `private_key`, `x-api-key`, but not `cache_key`.
_KEY_OWNERS = frozenset({"api", "access", "private", "secret", "session", "auth", "client", "subscription", "signing"})
# Query parameters that carry credentials although the name alone is not telling.
_SECRET_QUERY = frozenset({"key", "sig", "signature", "code", "x-amz-signature", "x-goog-signature"})

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SPLIT = re.compile(r"[^a-z0-9]+")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^\s/?#\"'<>]*@)")
_QUERY_PARAM = re.compile(r"(?P<lead>[?&;])(?P<name>[A-Za-z0-9_.\-\[\]%]+)=(?P<value>[^&#;\s\"'<>]*)")
_BEARER = re.compile(r"(?P<scheme>\b(?:Bearer|Basic|Token)\s+)(?P<value>[A-Za-z0-9._~+/\-]+=*)", re.IGNORECASE)


def _parts(name: str) -> list[str]:
    return [p for p in _SPLIT.split(_CAMEL.sub("_", str(name)).lower()) if p]


def is_secret_key(name: str) -> bool:
    """True when a key names a secret: `api_key`, `API-KEY`, `apiKey`, `x-api-key`, `token`,
    `access_token`, `client_secret`, `password`, `Authorization`, `auth`, ... (any case).

    Names ending in `_env` hold the *name* of an environment variable and are not secrets.
    """
    parts = _parts(name)
    if not parts or parts[-1] == "env":
        return False
    if any(p in _SECRET_PARTS for p in parts):
        return True
    last = parts[-1]
    if last in _SECRET_LAST:
        return True
    return last == "key" and len(parts) > 1 and parts[-2] in _KEY_OWNERS


def _secret_query_name(name: str) -> bool:
    return is_secret_key(name) or name.lower() in _SECRET_QUERY


def redact_url(text: str) -> str:
    """`text` with URL credentials (`user:pass@`) and secret query values (`api_key=`,
    `token=`, `key=`, `sig=`, ...) replaced by `***`. Anything else is left as it was."""
    if not text:
        return text
    text = _URL_USERINFO.sub(lambda m: f"{m['scheme']}{REDACTED}@", text)

    def query(m: re.Match[str]) -> str:
        if not _secret_query_name(m["name"]) or not m["value"]:
            return m.group(0)
        return f"{m['lead']}{m['name']}={REDACTED}"

    return _QUERY_PARAM.sub(query, text)


def redact_text(text: str) -> str:
    """`redact_url`, plus the values of `Bearer`/`Basic`/`Token` credentials: for error
    messages that may quote a request."""
    if not text:
        return text
    return _BEARER.sub(lambda m: f"{m['scheme']}{REDACTED}", redact_url(text))


def secret_keys(data: Any, prefix: str = "") -> list[str]:
    """Dotted paths of every secret-looking key in nested mappings and lists, in order."""
    found: list[str] = []
    if isinstance(data, Mapping):
        for key, value in data.items():
            path = f"{prefix}{key}"
            if is_secret_key(str(key)):
                found.append(path)
            found.extend(secret_keys(value, f"{path}."))
    elif isinstance(data, list | tuple):
        for i, value in enumerate(data):
            found.extend(secret_keys(value, f"{prefix}{i}."))
    return found


def redact(data: Any) -> Any:
    """A copy of `data` (nested mappings, lists, strings) with the value of every secret key
    replaced by `***` and every string passed through `redact_url`. `data` is not modified."""
    if isinstance(data, str):
        return redact_url(data)
    if isinstance(data, Mapping):
        return {k: REDACTED if is_secret_key(str(k)) and v is not None else redact(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return type(data)(redact(v) for v in data)
    return data


class RedactingFilter(logging.Filter):
    """A logging filter that passes every record through `redact_text` (message and args).

    Attach it to a handler (`handler.addFilter(RedactingFilter())`) so that whatever a library
    logs, a URL's credentials never reach the log file.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record is logging's problem to report, not ours
            return True
        clean = redact_text(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True
