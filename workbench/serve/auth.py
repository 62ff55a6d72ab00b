"""Authenticators: who is calling, as a `Principal` on `request.state.principal`, or a 401.

A credential arrives as `Authorization: Bearer <credential>` (the openai client's `api_key`) or
as `x-api-key: <credential>`. Each authenticator says whether a credential has its shape
(`recognises`) and checks it (`verify`); `Gateway` composes a list of them, with no registry:
the first that recognises a credential decides, and one that none recognises is unknown.

* `ApiKeys`: `wb-<id>-<secret>` keys from a keys file (`workbench.serve.keys`), re-read when
  the file changes, so `keys revoke` takes effect on the next request without a restart.
* `JwtVerifier`: JWTs signed HS256 (a shared secret) and/or RS256 (a public key), with the
  issuer, audience, expiry and not-before checked with a small leeway; the team comes from a
  configurable claim, the key id from `sub`, optional `rpm`/`tpm`/`daily_tokens` claims are the
  limits.
* `StaticKey`: one shared key from an environment variable (`serve --api-key-env`).

Reasons for a refusal are one line and never contain the credential.
"""

from __future__ import annotations

import hmac
import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from fastapi import Request

from workbench.core.errors import AuthError, ConfigError, MissingDependency, WorkbenchError
from workbench.serve.keys import KeysFile, load_keys, matches, split_key
from workbench.serve.principal import Principal

log = logging.getLogger(__name__)

DEFAULT_LEEWAY_S = 30.0


class Authenticator(Protocol):
    def recognises(self, credential: str) -> bool: ...

    def verify(self, credential: str) -> Principal: ...


def credential_of(request: Request) -> str | None:
    """The credential a request carries: a Bearer token, else an `x-api-key` header."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthError("the Authorization header is not `Bearer <credential>`")
        return token.strip()
    key = request.headers.get("x-api-key", "").strip()
    return key or None


class Gateway:
    """The `authenticate` hook of `create_app` composed of `authenticators`, tried in order."""

    def __init__(self, authenticators: Sequence[Authenticator]) -> None:
        if not authenticators:
            raise ConfigError("a Gateway needs at least one authenticator")
        self.authenticators = list(authenticators)

    def principal(self, credential: str | None) -> Principal:
        if credential is None:
            raise AuthError("missing credential (send Authorization: Bearer <key or token>)")
        for authenticator in self.authenticators:
            if authenticator.recognises(credential):
                return authenticator.verify(credential)
        raise AuthError("unknown credential")

    async def __call__(self, request: Request) -> None:
        try:
            principal = self.principal(credential_of(request))
        except AuthError as exc:
            log.info("refused %s %s: %s", request.method, request.url.path, exc)
            raise
        request.state.principal = principal


class StaticKey:
    """One shared key (`serve --api-key-env NAME`): every caller is the same principal."""

    def __init__(self, key: str, *, key_id: str = "static", team: str = "default") -> None:
        self._key = key.encode()
        self.principal = Principal(key_id=key_id, team=team)

    def recognises(self, credential: str) -> bool:
        return hmac.compare_digest(credential.encode(), self._key)

    def verify(self, credential: str) -> Principal:
        return self.principal


class ApiKeys:
    """Keys from a keys file; the file is re-read when its mtime, size or inode changes (one
    `stat` per request). A file that stops parsing keeps the last good keys, with an error in
    the log; a file that disappears means no key is valid."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._keys = load_keys(self.path)  # a missing or broken file at start-up is the user's mistake
        self._stamp = self._stat()

    def _stat(self) -> tuple[int, int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def keys(self) -> KeysFile:
        stamp = self._stat()
        if stamp == self._stamp:
            return self._keys
        with self._lock:
            if stamp != self._stamp:
                if stamp is None:
                    log.error("%s: the keys file is gone; every API key is refused", self.path)
                    self._keys = KeysFile()
                else:
                    try:
                        self._keys = load_keys(self.path)
                    except WorkbenchError as exc:
                        log.error("%s: keeping the previous keys: %s", self.path, exc)
                self._stamp = stamp
        return self._keys

    def recognises(self, credential: str) -> bool:
        return split_key(credential) is not None

    def verify(self, credential: str) -> Principal:
        parts = split_key(credential)
        if parts is None:
            raise AuthError("malformed API key")
        key_id, secret = parts
        record = self.keys().keys.get(key_id)
        if record is None or not matches(record, secret):
            raise AuthError("unknown API key")
        if record.revoked is not None:
            raise AuthError(f"API key {key_id} was revoked")
        return Principal(
            key_id=key_id, team=record.team, rpm=record.rpm, tpm=record.tpm, daily_tokens=record.daily_tokens
        )


def _int_claim(claims: dict[str, Any], name: str) -> int | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise AuthError(f"token claim {name!r} must be a positive integer")
    return value


class JwtVerifier:
    """JWTs signed with HS256 (`hs256_secret`) and/or RS256 (`rs256_public_key`, PEM). Only the
    configured algorithms are accepted (no `none`, no HS/RS confusion)."""

    def __init__(
        self,
        *,
        hs256_secret: str | None = None,
        rs256_public_key: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        team_claim: str = "team",
        leeway_s: float = DEFAULT_LEEWAY_S,
    ) -> None:
        try:
            import jwt
        except ImportError as exc:
            raise MissingDependency("pyjwt", "gateway") from exc
        self._jwt = jwt
        self._keys: dict[str, Any] = {}
        if hs256_secret:
            self._keys["HS256"] = hs256_secret
        if rs256_public_key:
            from cryptography.hazmat.primitives.serialization import load_pem_public_key

            try:
                self._keys["RS256"] = load_pem_public_key(rs256_public_key.encode())
            except ValueError as exc:
                raise ConfigError("the JWT public key is not a PEM public key") from exc
        if not self._keys:
            raise ConfigError("JWT auth needs an HS256 secret or an RS256 public key")
        self.issuer, self.audience, self.team_claim, self.leeway_s = issuer, audience, team_claim, leeway_s

    def recognises(self, credential: str) -> bool:
        return credential.count(".") == 2 and not credential.startswith("wb-")

    def verify(self, credential: str) -> Principal:
        jwt = self._jwt
        try:
            alg = jwt.get_unverified_header(credential).get("alg")
        except jwt.PyJWTError as exc:
            raise AuthError("malformed token") from exc
        key = self._keys.get(alg) if isinstance(alg, str) else None
        if key is None:
            raise AuthError(f"token algorithm {str(alg)[:16]!r} is not accepted (accepted: {', '.join(self._keys)})")
        required = ["exp", "sub"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        try:
            claims = jwt.decode(
                credential,
                key,
                algorithms=[alg],
                issuer=self.issuer,
                audience=self.audience,
                leeway=self.leeway_s,
                options={"require": required},
            )
        except jwt.ExpiredSignatureError as exc:
            raise AuthError("expired token") from exc
        except jwt.ImmatureSignatureError as exc:
            raise AuthError("token not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise AuthError("token audience is not this server's") from exc
        except jwt.InvalidIssuerError as exc:
            raise AuthError("token issuer is not trusted") from exc
        except jwt.InvalidSignatureError as exc:
            raise AuthError("token signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"token lacks the {exc.claim!r} claim") from exc
        except jwt.PyJWTError as exc:
            raise AuthError("invalid token") from exc
        team = claims.get(self.team_claim)
        if not isinstance(team, str) or not team:
            raise AuthError(f"token lacks the {self.team_claim!r} claim")
        subject = claims["sub"]
        if not isinstance(subject, str) or not subject:
            raise AuthError("token claim 'sub' must be a non-empty string")
        return Principal(
            key_id=subject,
            team=team,
            rpm=_int_claim(claims, "rpm"),
            tpm=_int_claim(claims, "tpm"),
            daily_tokens=_int_claim(claims, "daily_tokens"),
        )


def gateway_from(
    *,
    keys_file: str | None = None,
    jwt_secret_env: str | None = None,
    jwt_public_key: str | None = None,
    jwt_issuer: str | None = None,
    jwt_audience: str | None = None,
    jwt_team_claim: str = "team",
    api_key_env: str | None = None,
) -> Gateway | None:
    """The gateway the `serve` options describe (None: no auth configured). Secrets are read
    from the named environment variables here, never passed in as values."""
    authenticators: list[Authenticator] = []
    if api_key_env:
        key = os.environ.get(api_key_env)
        if not key:
            raise ConfigError(f"--api-key-env {api_key_env}: that environment variable is not set")
        authenticators.append(StaticKey(key))
    if keys_file:
        authenticators.append(ApiKeys(keys_file))
    if jwt_secret_env or jwt_public_key:
        secret = None
        if jwt_secret_env:
            secret = os.environ.get(jwt_secret_env)
            if not secret:
                raise ConfigError(f"--jwt-secret-env {jwt_secret_env}: that environment variable is not set")
        pem = None
        if jwt_public_key:
            try:
                pem = Path(jwt_public_key).read_text()
            except OSError as exc:
                raise ConfigError(f"--jwt-public-key {jwt_public_key}: cannot read it ({exc.strerror})") from exc
        authenticators.append(
            JwtVerifier(
                hs256_secret=secret,
                rs256_public_key=pem,
                issuer=jwt_issuer,
                audience=jwt_audience,
                team_claim=jwt_team_claim,
            )
        )
    elif jwt_issuer or jwt_audience:
        raise ConfigError("--jwt-issuer/--jwt-audience need --jwt-secret-env or --jwt-public-key")
    return Gateway(authenticators) if authenticators else None
