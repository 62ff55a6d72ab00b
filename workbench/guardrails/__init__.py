"""Guardrails layer: input and output checks as pipeline stages.

Checks are chosen by the config's `check` name through an explicit registry (`CHECKS`).
"""

from workbench.guardrails.base import CheckContext, CheckResult, GuardCheck
from workbench.guardrails.registry import CHECKS, build_check, check_registry
from workbench.guardrails.stages import InputGuardStage, OutputGuardStage, raise_if_blocked, refusal

__all__ = [
    "CHECKS",
    "CheckContext",
    "CheckResult",
    "GuardCheck",
    "InputGuardStage",
    "OutputGuardStage",
    "build_check",
    "check_registry",
    "raise_if_blocked",
    "refusal",
]
