"""Routing layer: choose a route for each question, then the model within the route."""

from workbench.routing.complexity import complexity_score, fit_complexity, request_features
from workbench.routing.policies import policy_registry
from workbench.routing.reply import ReplyConfig, ReplyStage
from workbench.routing.route_set import RouteExample, load_route_set, route_accuracy
from workbench.routing.selection import (
    ModelSelector,
    ModelSwitch,
    load_model_card,
    resolve_candidates,
    selection_stages,
)
from workbench.routing.semantic import SemanticRouter, validate_route

__all__ = [
    "ModelSelector",
    "ModelSwitch",
    "ReplyConfig",
    "ReplyStage",
    "RouteExample",
    "SemanticRouter",
    "complexity_score",
    "fit_complexity",
    "load_model_card",
    "load_route_set",
    "policy_registry",
    "request_features",
    "resolve_candidates",
    "route_accuracy",
    "selection_stages",
    "validate_route",
]
