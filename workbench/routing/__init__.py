"""Routing layer: choose a route for each question."""

from workbench.routing.semantic import SemanticRouter, validate_route

__all__ = ["SemanticRouter", "validate_route"]
