"""`serve --keys FILE --jwt-secret-env NAME` for real: uvicorn on loopback, the official `openai`
client with a key from `keys create` and with an HS256 JWT; a key revoked while the server runs
is refused at once; the secrets appear nowhere in the server's log, /metrics or request log."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import httpx
import jwt
import pytest

from tests.conftest import REPO
from tests.serve import test_serve_integration as served
from workbench.serve.keys import create_key, revoke_key
from workbench.testing.workbench_server import WorkbenchServer as Server

pytestmark = pytest.mark.integration

# The exported bundle of the serve integration tests (a module-scoped fixture).
bundle = served.bundle
QUESTION = served.QUESTION
JWT_SECRET = "integration-hs256-secret-0123456789abcdef"


@pytest.fixture
def keyed_server(bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Server, Path]]:
    shutil.rmtree(bundle / "var", ignore_errors=True)
    keys = tmp_path / "keys.yaml"
    create_key(keys, "ops")
    monkeypatch.setenv("WB_TEST_JWT_SECRET", JWT_SECRET)
    s = Server(bundle, "--keys", str(keys), "--jwt-secret-env", "WB_TEST_JWT_SECRET", "--jwt-audience", "wb", cwd=REPO)
    try:
        s.wait_ready()
        yield s, keys
    finally:
        s.stop()


def test_keys_and_jwt_through_the_openai_client_and_a_live_revoke(
    keyed_server: tuple[Server, Path], bundle: Path
) -> None:
    from openai import AuthenticationError, OpenAI

    server, keys = keyed_server
    key_id, key = create_key(keys, "blue")  # created while the server runs: picked up without a restart
    now = int(time.time())
    token = jwt.encode({"sub": "svc", "team": "red", "aud": "wb", "exp": now + 300}, JWT_SECRET, algorithm="HS256")
    messages = [{"role": "user", "content": QUESTION}]
    for credential in (key, token):
        client = OpenAI(base_url=f"{server.url}/v1", api_key=credential, max_retries=0)
        (model,) = [m.id for m in client.models.list()]
        answer = client.chat.completions.create(model=model, messages=messages).choices[0].message.content  # type: ignore[arg-type]
        assert answer and "Sky" in answer

    revoke_key(keys, key_id)
    client = OpenAI(base_url=f"{server.url}/v1", api_key=key, max_retries=0)
    with pytest.raises(AuthenticationError) as refused:
        client.chat.completions.create(model=model, messages=messages)  # type: ignore[arg-type]
    assert f"API key {key_id} was revoked" in str(refused.value)
    assert refused.value.response.headers["www-authenticate"] == "Bearer"
    unauthenticated = httpx.post(f"{server.url}/v1/ask", json={"question": QUESTION})
    assert unauthenticated.status_code == 401 and "missing credential" in unauthenticated.text
    assert httpx.get(f"{server.url}/healthz").status_code == 200
    metrics = httpx.get(f"{server.url}/metrics").text

    log = server.stop()
    with duckdb.connect(str(next((bundle / "var" / "requests").glob("*.duckdb"))), read_only=True) as con:
        rows = con.execute("SELECT * FROM requests").df()
    assert sorted(set(rows["status"])) == [200, 401]
    dumped = rows.to_csv()
    for secret in (key, key.split("-", 2)[2], token, token.split(".")[2], JWT_SECRET):
        assert secret not in log and secret not in metrics and secret not in dumped
