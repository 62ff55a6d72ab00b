import asyncio
import json
import logging

import httpx
import pytest

from workbench.core.errors import ConfigError, ProviderError, ProviderTimeout, ProviderUnavailable, RateLimited
from workbench.core.protocols import GenerationRequest
from workbench.core.schema import OpenAICompatEndpoint
from workbench.models import EndpointPool, OpenAICompatModel, ProviderRejected
from workbench.models.openai_compat import retry_after_seconds

REQ = GenerationRequest(question="q", messages=({"role": "user", "content": "Say hello"},), params={"max_tokens": 5})


def config(**kw) -> OpenAICompatEndpoint:
    return OpenAICompatEndpoint(
        provider="openai_compat", base_url="http://llm.test/v1/", model="m1", params={"temperature": 0}, **kw
    )


def reply(content: str = "Hello!", usage: dict | None = None) -> dict:
    body = {"model": "m1-served", "choices": [{"message": {"role": "assistant", "content": content}}]}
    if usage is not None:
        body["usage"] = usage
    return body


def model_with(handler, **kw) -> OpenAICompatModel:
    return OpenAICompatModel(
        config(**kw),
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )


def test_posts_chat_completion_and_reads_usage():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=reply(usage={"prompt_tokens": 11, "completion_tokens": 3}))

    out = model_with(handler).complete(REQ)
    assert (out.text, out.tokens_in, out.tokens_out, out.model) == ("Hello!", 11, 3, "m1-served")
    [request] = seen
    assert str(request.url) == "http://llm.test/v1/chat/completions"
    body = json.loads(request.content)
    assert body == {
        "model": "m1",
        "messages": [{"role": "user", "content": "Say hello"}],
        "temperature": 0,
        "max_tokens": 5,
    }
    assert "authorization" not in request.headers


def test_api_key_is_read_from_env_at_call_time(monkeypatch):
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        return httpx.Response(200, json=reply())

    model = model_with(handler, api_key_env="WB_TEST_KEY")
    monkeypatch.delenv("WB_TEST_KEY", raising=False)
    with pytest.raises(ConfigError, match="WB_TEST_KEY"):
        model.complete(REQ)
    monkeypatch.setenv("WB_TEST_KEY", "sk-secret")
    model.complete(REQ)
    assert seen == ["Bearer sk-secret"]
    assert "sk-secret" not in model.config.model_dump_json()


def test_json_schema_goes_in_response_format():
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = model_with(lambda r: httpx.Response(200, json=reply())).payload(
        REQ.model_copy(update={"json_schema": schema})
    )
    assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
    llama_style = model_with(lambda r: httpx.Response(200, json=reply()), json_mode="json_object")
    assert llama_style.payload(REQ.model_copy(update={"json_schema": schema}))["response_format"] == {
        "type": "json_object",
        "schema": schema,
    }


def test_usage_is_estimated_when_missing():
    out = model_with(lambda r: httpx.Response(200, json=reply("one two three"))).complete(REQ)
    assert out.tokens_in == 2 and out.tokens_out == 3


@pytest.mark.parametrize(
    ("status", "error", "retryable"),
    [
        (429, RateLimited, True),
        (500, ProviderUnavailable, True),
        (503, ProviderUnavailable, True),
        (408, ProviderTimeout, True),
        (400, ProviderRejected, False),
        (401, ProviderRejected, False),
        (404, ProviderRejected, False),
    ],
)
def test_http_status_maps_to_error_tree(status, error, retryable):
    model = model_with(lambda r: httpx.Response(status, text="nope\nmore", headers={"retry-after": "2"}))
    with pytest.raises(error) as info:
        model.complete(REQ)
    assert info.value.retryable is retryable
    assert f"HTTP {status}: nope more" in str(info.value)
    if status == 429:
        assert info.value.retry_after == 2.0


@pytest.mark.parametrize(
    ("exc", "error"),
    [
        (httpx.ConnectError("refused"), ProviderUnavailable),
        (httpx.ConnectTimeout("unreachable"), ProviderUnavailable),
        (httpx.ReadTimeout("slow"), ProviderTimeout),
        (httpx.RemoteProtocolError("hung up"), ProviderUnavailable),
    ],
)
def test_transport_errors_map_to_error_tree(exc, error):
    def handler(request):
        raise exc

    with pytest.raises(error):
        model_with(handler).complete(REQ)


def test_malformed_body_is_a_provider_error():
    with pytest.raises(ProviderError, match="malformed"):
        model_with(lambda r: httpx.Response(200, json={"oops": 1})).complete(REQ)


async def test_async_client_is_used():
    out = await model_with(lambda r: httpx.Response(200, json=reply("async"))).acomplete(REQ)
    assert out.text == "async"


async def test_async_errors_map_too():
    def handler(request):
        raise httpx.ConnectError("refused")

    with pytest.raises(ProviderUnavailable, match="cannot reach"):
        await model_with(handler).acomplete(REQ)


SECRET_URL = "https://alice:pw-s3cr3t@llm.test/v1?api_key=key-s3cr3t"


def secret_model(handler) -> OpenAICompatModel:
    cfg = OpenAICompatEndpoint(provider="openai_compat", base_url=SECRET_URL, model="m1", retry={"base_delay_s": 0})
    return OpenAICompatModel(
        cfg,
        client=httpx.Client(transport=httpx.MockTransport(handler)),
        async_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )


def echo_500(request: httpx.Request) -> httpx.Response:
    return httpx.Response(500, text=f"upstream failed for {SECRET_URL}")


def refuse(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError(f"refused {SECRET_URL}")


def malformed(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"oops": SECRET_URL})


@pytest.mark.parametrize("handler", [echo_500, refuse, malformed])
async def test_credentials_in_base_url_never_reach_errors_or_logs(handler, caplog):
    model = secret_model(handler)
    pool = EndpointPool({"m": model.config}, {"m": model}, sleep=lambda s: None)
    caplog.set_level(logging.DEBUG)
    texts = []
    for call in (lambda: pool.complete("m", REQ), lambda: asyncio.run(pool.acomplete("m", REQ))):
        with pytest.raises(ProviderError) as info:
            await asyncio.to_thread(call)
        texts += [str(info.value), str(info.value.__cause__)]
    # Our own log lines; httpx logs its request URL itself (a handler's RedactingFilter covers it).
    texts += [r.getMessage() for r in caplog.records if r.name.startswith("workbench")]
    assert "llm.test" in texts[0] and len(texts) > 4
    for text in texts:
        assert "s3cr3t" not in text


def test_url_user_and_password_are_sent_as_basic_auth_not_in_the_url():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=reply())

    model = secret_model(handler)
    model.complete(REQ)
    [request] = seen
    assert request.url.userinfo == b"" and request.url.params["api_key"] == "key-s3cr3t"
    assert request.headers["authorization"] == httpx.BasicAuth("alice", "pw-s3cr3t")._auth_header
    assert "s3cr3t" not in model.where


def test_invalid_base_url_is_a_config_error_without_credentials():
    with pytest.raises(ConfigError) as info:
        OpenAICompatModel(OpenAICompatEndpoint(provider="openai_compat", base_url="http://a:pw-s3cr3t@h:x/", model="m"))
    assert "s3cr3t" not in str(info.value)


def test_retry_after_as_seconds_or_http_date():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412475.0) == 5.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


async def test_close_is_idempotent_and_a_later_call_reopens():
    model = OpenAICompatModel(config())
    sync, aclient = model._sync_client(), model._aclient()
    model.close()
    model.close()
    await model.aclose()
    await model.aclose()
    assert sync.is_closed and aclient.is_closed
    assert model._sync_client() is not sync
    model.close()
