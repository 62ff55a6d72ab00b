"""The explicit map from a config's `check` name to its check class."""

from __future__ import annotations

from typing import Any

from workbench.core.registry import Registry
from workbench.guardrails.base import CheckContext, GuardCheck

CHECKS: dict[str, str] = {
    "max_size": "workbench.guardrails.max_size:MaxSizeGuard",
    "injection": "workbench.guardrails.injection:InjectionGuard",
    "attack": "workbench.guardrails.attack:AttackGuard",
    "pii": "workbench.guardrails.pii:PiiGuard",
    "json_schema": "workbench.guardrails.json_schema:JsonSchemaGuard",
    "groundedness": "workbench.guardrails.groundedness:GroundednessGuard",
    "safety": "workbench.guardrails.safety:SafetyGuard",
}


def check_registry(extra: dict[str, str | type] | None = None) -> Registry:
    """A fresh registry of guardrail checks; pass user check classes in `extra`."""
    return Registry("guardrail check", {**CHECKS, **(extra or {})})


def build_check(config: Any, context: CheckContext, registry: Registry | None = None) -> GuardCheck:
    """Instantiate the check for `config` (its `check` field picks the class) and validate it for the side."""
    cls = (registry or check_registry()).resolve(config.check)
    check: GuardCheck = cls(config, context)
    check.validate_for(context.side)
    return check
