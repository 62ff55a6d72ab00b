"""The command line of the bundle layer (being built for issue 8)."""

from __future__ import annotations

from typing import Any


def add_parser(sub: Any) -> None:
    """Registers nothing yet."""
