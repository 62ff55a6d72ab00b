"""Section 1 of the gateway, in process: API keys from a keys file and JWTs (HS256, RS256) make
a `Principal`; every bad credential is a one-line 401 with `WWW-Authenticate: Bearer` that never
reaches the model; the secret shows up in no log, metric or request-log row."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi import Depends, FastAPI, Request

from tests.serve.conftest import serving
from workbench.core.errors import AuthError, ConfigError
from workbench.serve.app import create_app
from workbench.serve.auth import ApiKeys, Gateway, JwtVerifier, StaticKey, gateway_from
from workbench.serve.keys import create_key, load_keys, revoke_key
from workbench.serve.principal import Principal, principal_of
from workbench.testing.models import ScriptedModel

QUESTION = "Who picked up the remaining four packages?"
HS_SECRET = "hs256-test-secret-that-is-long-enough-0123456789"


@pytest.fixture(scope="module")
def rsa_pair() -> tuple[Any, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, pem


def token(key: Any = HS_SECRET, alg: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    base = {"sub": "svc-1", "team": "blue", "iss": "idp", "aud": "workbench", "iat": now, "exp": now + 300}
    return jwt.encode({k: v for k, v in (base | claims).items() if v is not None}, key, algorithm=alg)


def whoami_app(gateway: Gateway) -> FastAPI:
    """A bare app that returns the principal the gateway established."""
    app = FastAPI()

    @app.get("/whoami", dependencies=[Depends(gateway)])
    async def whoami(request: Request) -> dict[str, Any]:
        p = principal_of(request.state)
        return {"key_id": p.key_id, "team": p.team, "rpm": p.rpm, "tpm": p.tpm, "daily_tokens": p.daily_tokens}

    @app.exception_handler(AuthError)
    async def refused(request: Request, exc: Exception) -> Any:
        from fastapi.responses import JSONResponse

        return JSONResponse({"reason": str(exc)}, status_code=401)

    return app


async def whoami(gateway: Gateway, headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=whoami_app(gateway))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.get("/whoami", headers=headers)


def jwt_gateway(rsa_pem: str | None = None, **kwargs: Any) -> Gateway:
    options: dict[str, Any] = {"issuer": "idp", "audience": "workbench"} | kwargs
    return Gateway([JwtVerifier(hs256_secret=HS_SECRET, rs256_public_key=rsa_pem, **options)])


# --- the keys file --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["keys.yaml", "keys.json"])
def test_keys_file_stores_a_hash_and_round_trips(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    key_id, key = create_key(path, "blue", rpm=60, tpm=6000, daily_tokens=100_000)
    text = path.read_text()
    secret = key.split("-", 2)[2]
    assert key.startswith(f"wb-{key_id}-") and secret not in text and key not in text
    record = load_keys(path).keys[key_id]
    assert (record.team, record.rpm, record.tpm, record.daily_tokens, record.revoked) == (
        "blue",
        60,
        6000,
        100_000,
        None,
    )
    assert path.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []  # the atomic write left nothing


def test_keys_file_rejects_unknown_fields(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    create_key(path, "blue")
    path.write_text(path.read_text().replace("team: blue", "team: blue\n    secret: oops"))
    with pytest.raises(ConfigError, match="unknown key"):
        load_keys(path)


# --- API keys --------------------------------------------------------------------------------


async def test_api_key_makes_the_principal_by_bearer_or_x_api_key(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    key_id, key = create_key(path, "blue", rpm=60, tpm=6000)
    gateway = Gateway([ApiKeys(path)])
    for headers in ({"Authorization": f"Bearer {key}"}, {"x-api-key": key}):
        r = await whoami(gateway, headers)
        assert r.status_code == 200, r.text
        assert r.json() == {"key_id": key_id, "team": "blue", "rpm": 60, "tpm": 6000, "daily_tokens": None}


async def test_bad_api_keys_are_refused_with_a_reason(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    key_id, key = create_key(path, "blue")
    other_id, other = create_key(path, "red")
    revoke_key(path, other_id)
    gateway = Gateway([ApiKeys(path)])
    forged = key[:-4] + ("aaaa" if not key.endswith("aaaa") else "bbbb")
    cases = {
        "missing credential": {},
        "unknown API key": {"Authorization": "Bearer wb-000000000000-nosuchsecret"},
        "unknown credential": {"Authorization": "Bearer sk-not-ours"},
        "not `Bearer": {"Authorization": f"Basic {key}"},
        f"API key {other_id} was revoked": {"Authorization": f"Bearer {other}"},
    }
    cases["unknown API key "] = {"Authorization": f"Bearer {forged}"}
    for reason, headers in cases.items():
        r = await whoami(gateway, headers)
        assert r.status_code == 401 and reason.strip() in r.json()["reason"], (reason, r.text)
        assert key not in r.text and other not in r.text


async def test_a_revoke_takes_effect_without_a_restart(tmp_path: Path) -> None:
    path = tmp_path / "keys.yaml"
    key_id, key = create_key(path, "blue")
    gateway = Gateway([ApiKeys(path)])
    headers = {"Authorization": f"Bearer {key}"}
    assert (await whoami(gateway, headers)).status_code == 200
    revoke_key(path, key_id)
    assert (await whoami(gateway, headers)).status_code == 401
    _, later = create_key(path, "green")  # and a new key works at once too
    assert (await whoami(gateway, {"x-api-key": later})).json()["team"] == "green"


async def test_a_broken_keys_file_keeps_the_last_good_keys(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "keys.yaml"
    _, key = create_key(path, "blue")
    gateway = Gateway([ApiKeys(path)])
    path.write_text("keys: [not, a, mapping]\n")
    with caplog.at_level(logging.ERROR):
        assert (await whoami(gateway, {"x-api-key": key})).status_code == 200
    assert "keeping the previous keys" in caplog.text
    path.unlink()
    assert (await whoami(gateway, {"x-api-key": key})).status_code == 401


# --- JWT -------------------------------------------------------------------------------------


async def test_hs256_and_rs256_tokens_make_the_principal(rsa_pair: tuple[Any, str]) -> None:
    private, pem = rsa_pair
    gateway = jwt_gateway(pem)
    r = await whoami(gateway, {"Authorization": f"Bearer {token(rpm=30, tpm=900)}"})
    assert r.json() == {"key_id": "svc-1", "team": "blue", "rpm": 30, "tpm": 900, "daily_tokens": None}
    r = await whoami(gateway, {"Authorization": f"Bearer {token(private, 'RS256', sub='svc-2', team='red')}"})
    assert r.json() == {"key_id": "svc-2", "team": "red", "rpm": None, "tpm": None, "daily_tokens": None}


async def test_the_team_claim_is_configurable() -> None:
    gateway = jwt_gateway(team_claim="org")
    r = await whoami(gateway, {"Authorization": f"Bearer {token(org='green')}"})
    assert r.json()["team"] == "green"
    r = await whoami(gateway, {"Authorization": f"Bearer {token()}"})
    assert r.status_code == 401 and "'org' claim" in r.json()["reason"]


async def test_expiry_has_a_small_leeway() -> None:
    gateway = jwt_gateway()
    now = int(time.time())
    assert (await whoami(gateway, {"x-api-key": token(exp=now - 5)})).status_code == 200  # clock skew
    r = await whoami(gateway, {"x-api-key": token(exp=now - 120)})
    assert r.status_code == 401 and r.json()["reason"] == "expired token"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"aud": "someone-else"}, "audience"),
        ({"aud": None}, "'aud' claim"),
        ({"iss": "evil"}, "issuer"),
        ({"exp": None}, "'exp' claim"),
        ({"sub": None}, "'sub' claim"),
        ({"team": None}, "'team' claim"),
        ({"rpm": "lots"}, "'rpm' must be a positive integer"),
        ({"nbf": int(time.time()) + 3600}, "not valid yet"),
    ],
)
async def test_bad_claims_are_refused(claims: dict[str, Any], reason: str) -> None:
    r = await whoami(jwt_gateway(), {"Authorization": f"Bearer {token(**claims)}"})
    assert r.status_code == 401 and reason in r.json()["reason"], r.text


async def test_forged_and_confused_tokens_are_refused(rsa_pair: tuple[Any, str]) -> None:
    private, pem = rsa_pair
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cases = {
        "signature does not verify": token("another-secret-of-sufficient-length-0123456789"),
        "signature does not verify ": token(other, "RS256"),
        # HS256 signed with the public key, the classic algorithm-confusion forgery
        "not accepted": jwt.encode({"sub": "x", "team": "t"}, HS_SECRET, algorithm="HS384"),
        "'none' is not accepted": jwt.encode({"sub": "x"}, None, algorithm="none"),
        "malformed token": "abc.def.ghi",
    }
    only_rs = Gateway([JwtVerifier(rs256_public_key=pem, issuer="idp", audience="workbench")])
    for reason, credential in cases.items():
        r = await whoami(jwt_gateway(pem), {"Authorization": f"Bearer {credential}"})
        assert r.status_code == 401 and reason.strip() in r.json()["reason"], (reason, r.text)
    r = await whoami(only_rs, {"Authorization": f"Bearer {token()}"})  # an HS256 token to an RS256-only server
    assert r.status_code == 401 and "'HS256' is not accepted" in r.json()["reason"]


def test_gateway_from_reads_secrets_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert gateway_from() is None
    with pytest.raises(ConfigError, match="WB_NO_SUCH_VAR: that environment variable is not set"):
        gateway_from(jwt_secret_env="WB_NO_SUCH_VAR")
    with pytest.raises(ConfigError, match="keys file not found"):
        gateway_from(keys_file=str(tmp_path / "missing.yaml"))
    with pytest.raises(ConfigError, match="not a PEM public key"):
        (tmp_path / "bad.pem").write_text("nope")
        gateway_from(jwt_public_key=str(tmp_path / "bad.pem"))
    with pytest.raises(ConfigError, match="need --jwt-secret-env"):
        gateway_from(jwt_audience="workbench")
    monkeypatch.setenv("WB_JWT", HS_SECRET)
    monkeypatch.setenv("WB_STATIC", "static-key")
    path = tmp_path / "keys.yaml"
    create_key(path, "blue")
    gateway = gateway_from(keys_file=str(path), jwt_secret_env="WB_JWT", api_key_env="WB_STATIC")
    assert gateway is not None
    kinds = [type(a) for a in gateway.authenticators]
    assert kinds == [StaticKey, ApiKeys, JwtVerifier]
    assert gateway.principal("static-key") == Principal(key_id="static", team="default")


# --- the served app --------------------------------------------------------------------------


@pytest.fixture
def keyed(tmp_path: Path, make_session: Any, make_served: Any) -> tuple[FastAPI, ScriptedModel, Path]:
    model = ScriptedModel(["Sky answered."], repeat_last=True)
    served = make_served(make_session(fakes={"extractive": model}))
    path = tmp_path / "keys.yaml"
    create_key(path, "seed")
    gateway = Gateway([ApiKeys(path), JwtVerifier(hs256_secret=HS_SECRET)])
    return create_app(served, authenticate=gateway), model, path


async def test_refused_requests_never_reach_the_model_and_say_why(keyed: tuple[FastAPI, ScriptedModel, Path]) -> None:
    app, model, path = keyed
    key_id, key = create_key(path, "blue")
    revoke_key(path, key_id)
    now = int(time.time())
    bad = [
        {},
        {"Authorization": f"Bearer {key}"},
        {"Authorization": "Bearer wb-ffffffffffff-x"},
        {"Authorization": f"Bearer {token(exp=now - 3600, aud=None, iss=None)}"},
        {"Authorization": f"Bearer {token('forged-secret-of-sufficient-length-0123456789', aud=None, iss=None)}"},
    ]
    body = {"model": "extractive", "messages": [{"role": "user", "content": QUESTION}]}
    async with serving(app) as c:
        for headers in bad:
            for path_, payload in (("/v1/chat/completions", body), ("/v1/ask", {"question": QUESTION})):
                r = await c.post(path_, json=payload, headers=headers)
                assert r.status_code == 401, r.text
                assert r.headers["www-authenticate"] == "Bearer"
                error = r.json()["error"]
                assert error["type"] == "authentication_error" and "\n" not in error["message"]
            assert (await c.get("/v1/models", headers=headers)).status_code == 401
        for open_path in ("/healthz", "/readyz", "/metrics", "/version"):
            assert (await c.get(open_path)).status_code != 401, open_path
    assert model.calls == 0


async def test_the_secret_is_in_no_log_metric_or_request_log(
    keyed: tuple[FastAPI, ScriptedModel, Path], caplog: pytest.LogCaptureFixture
) -> None:
    app, model, path = keyed
    key_id, key = create_key(path, "blue")
    revoked_id, revoked = create_key(path, "red")
    revoke_key(path, revoked_id)
    jwt_token = token(aud=None, iss=None)
    secrets = [key, key.split("-", 2)[2], revoked, revoked.split("-", 2)[2], jwt_token, jwt_token.split(".")[2]]
    served = app.state.ctx.service
    with caplog.at_level(logging.DEBUG):
        async with serving(app) as c:
            for credential in (key, jwt_token):
                r = await c.post(
                    "/v1/ask", json={"question": QUESTION}, headers={"Authorization": f"Bearer {credential}"}
                )
                assert r.status_code == 200, r.text
            r = await c.post("/v1/ask", json={"question": QUESTION}, headers={"x-api-key": revoked})
            assert r.status_code == 401 and revoked_id in r.json()["error"]["message"]
            r = await c.post("/v1/ask", json={"question": QUESTION}, headers={"x-api-key": key + "x"})
            assert r.status_code == 401
            metrics = (await c.get("/metrics")).text
            served.request_log.flush()
    with duckdb.connect(str(served.request_log.path), read_only=True) as con:
        rows = con.execute("SELECT * FROM requests").df()
    assert sorted(rows["status"]) == [200, 200, 401, 401]  # refusals are logged, with their reason
    dumped = rows.to_csv()
    assert model.calls == 2
    for secret in secrets:
        assert secret not in caplog.text and secret not in metrics and secret not in dumped
