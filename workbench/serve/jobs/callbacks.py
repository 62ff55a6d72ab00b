"""Callback URLs: which hosts a finished job may be POSTed to, and the POST itself.

A callback makes the server send a request where the caller says, so the host must be loopback
or named on the server's allow-list (`--callback-allow HOST`); anything else is refused with a
422 when the job is submitted, never fetched.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

CALLBACK_TIMEOUT_S = 10.0


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class CallbackPolicy:
    """Loopback hosts, and the hosts in `allow` (exact, case-insensitive)."""

    def __init__(self, allow: Iterable[str] = ()) -> None:
        self.allow = frozenset(h.lower().strip("[]") for h in allow)

    def refusal(self, url: str) -> str | None:
        """Why `url` may not be called back (None: it may)."""
        try:
            parts = urlsplit(url)
            host = (parts.hostname or "").lower()
            parts.port  # noqa: B018 (raises on a malformed port)
        except ValueError:
            return "callback_url is not a valid URL"
        if parts.scheme not in ("http", "https") or not host:
            return "callback_url must be an http:// or https:// URL with a host"
        if parts.username or parts.password:
            return "callback_url must not carry credentials"
        if not (_loopback(host) or host in self.allow):
            return f"callback_url host {host!r} is neither loopback nor on the server's --callback-allow list"
        return None


async def post_callback(url: str, payload: dict[str, Any]) -> None:
    """POST `payload` to `url` once; a failure is logged, never raised (the job is done)."""
    import httpx

    try:
        async with httpx.AsyncClient(timeout=CALLBACK_TIMEOUT_S, follow_redirects=False) as client:
            response = await client.post(url, json=payload)
        if response.status_code >= 400:
            log.warning("job %s: callback answered %d", payload.get("id"), response.status_code)
    except httpx.HTTPError as exc:
        log.warning("job %s: callback failed: %s", payload.get("id"), type(exc).__name__)
