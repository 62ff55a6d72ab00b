"""`json_schema` (output only): a route that asks for JSON gets an answer that parses and validates."""

from __future__ import annotations

import json
import re
from typing import Any

from workbench.core.errors import ConfigError
from workbench.core.schema import JsonSchemaCheck
from workbench.core.state import RequestState
from workbench.guardrails.base import CheckResult, GuardCheck

_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)\n?\s*```", re.DOTALL)


def extract_json(text: str) -> Any:
    """Parse `text` as JSON, tolerating code fences and prose around one object or array.

    Raises `ValueError` when no JSON value can be found.
    """
    candidates = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    for opener, closer in ("{}", "[]"):
        start, end = text.find(opener), text.rfind(closer)
        if 0 <= start < end:
            candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate.strip())
        except json.JSONDecodeError:
            continue
    raise ValueError("answer is not valid JSON")


def _where(path: Any) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


class JsonSchemaGuard(GuardCheck):
    """Parses the answer as JSON and validates it against the route's `json_schema`.

    Routes whose `output` is `text` are not checked (the verdict says so).
    """

    name = "json_schema"
    sides = frozenset({"output"})
    actions = frozenset({"block", "flag"})
    config: JsonSchemaCheck

    def _validator(self, route: str, schema: dict[str, Any]) -> Any:
        from jsonschema import SchemaError
        from jsonschema.validators import validator_for

        cls = validator_for(schema)
        try:
            cls.check_schema(schema)
        except SchemaError as exc:
            raise ConfigError(f"routing.routes.{route}.json_schema is not a valid JSON schema: {exc.message}") from exc
        return cls(schema)

    def inspect(self, text: str, state: RequestState) -> CheckResult:
        route = self.context.routes.get(state.route or "")
        if route is None or route.output != "json":
            return CheckResult(False, f"route {state.route!r} does not ask for JSON; not checked")
        try:
            value = extract_json(text)
        except ValueError as exc:
            return CheckResult(True, f"route {state.route!r} asks for JSON; {exc}")
        if route.json_schema is None:
            return CheckResult(False, "answer is valid JSON (route has no schema)")
        from jsonschema.exceptions import best_match

        errors = list(self._validator(state.route or "", route.json_schema).iter_errors(value))
        if not errors:
            return CheckResult(False, "answer matches the route's JSON schema")
        err = best_match(errors)
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        return CheckResult(True, f"answer violates the JSON schema at {_where(err.absolute_path)}: {err.message}{more}")
