"""`Principal`: who a request is for, as authentication establishes it and the limits and quotas
read it. The one type the gateway's parts share (auth writes it, limiter and jobs read it)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    `key_id` names the credential (an API key's public id, or a JWT's subject) and is safe to log;
    the secret never is. `team` is the unit quotas are counted in. The limits are the key's own
    (None: no per-key limit of that kind); team limits come from the limiter's configuration.
    """

    key_id: str
    team: str
    rpm: int | None = None
    tpm: int | None = None
    daily_tokens: int | None = None


# Requests when no authentication is configured (loopback only): one shared caller.
ANONYMOUS = Principal(key_id="anonymous", team="anonymous")


def principal_of(state: object) -> Principal:
    """The principal that authentication put on a request's `state` (ANONYMOUS if none)."""
    found = getattr(state, "principal", None)
    return found if isinstance(found, Principal) else ANONYMOUS
