import pytest

from workbench.core.errors import ConfigError
from workbench.core.schema import JsonSchemaCheck, RouteConfig
from workbench.core.state import RequestState
from workbench.guardrails import CheckContext, build_check
from workbench.guardrails.json_schema import extract_json


def _check(routes, action="block"):
    return build_check(JsonSchemaCheck(check="json_schema", action=action), CheckContext(side="output", routes=routes))


def _state(route: str, answer: str) -> RequestState:
    return RequestState(query="q", route=route, answer=answer)


@pytest.mark.parametrize(
    "text",
    [
        '{"answer": "Rollo", "found": true}',
        '```json\n{"answer": "Rollo", "found": true}\n```',
        'Here you go:\n```\n{"answer": "Rollo"}\n```\nHope it helps.',
        'Sure! {"answer": "Rollo", "found": true}',
    ],
)
def test_extract_json_tolerates_fences_and_prose(text):
    assert extract_json(text)["answer"] == "Rollo"


def test_valid_answer_passes(routes):
    answer = '```json\n{"answer": "Rollo", "found": true}\n```'
    result = _check(routes).inspect(answer, _state("structured", answer))
    assert not result.triggered and "matches" in result.detail


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"found": true}', "'answer' is a required property"),
        ('{"answer": 911, "found": true}', "$.answer: 911 is not of type 'string'"),
        ("Rollo, in 911.", "not valid JSON"),
    ],
)
def test_violations_trigger_with_a_clear_detail(routes, answer, expected):
    result = _check(routes).inspect(answer, _state("structured", answer))
    assert result.triggered
    assert expected in result.detail


def test_text_routes_are_not_checked(routes):
    result = _check(routes).inspect("Rollo.", _state("general", "Rollo."))
    assert not result.triggered and "does not ask for JSON" in result.detail


def test_json_route_without_schema_only_needs_valid_json():
    routes = {"raw": RouteConfig(output="json")}
    assert not _check(routes).inspect("[1, 2]", _state("raw", "[1, 2]")).triggered
    assert _check(routes).inspect("nope", _state("raw", "nope")).triggered


def test_invalid_schema_is_a_config_error():
    routes = {"bad": RouteConfig(output="json", json_schema={"type": "no-such-type"})}
    with pytest.raises(ConfigError, match="routing.routes.bad.json_schema"):
        _check(routes).inspect("{}", _state("bad", "{}"))


def test_json_schema_is_output_only_and_cannot_mask(routes):
    with pytest.raises(ConfigError, match="output only"):
        build_check(JsonSchemaCheck(check="json_schema"), CheckContext(side="input"))
    with pytest.raises(ConfigError, match="cannot 'mask'"):
        _check(routes, action="mask")
