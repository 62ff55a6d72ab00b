"""Chat messages for a request, and merged generation parameters."""

from __future__ import annotations

from typing import Any

from workbench.core.protocols import GenerationRequest


def chat_messages(request: GenerationRequest) -> list[dict[str, str]]:
    """The request's rendered messages; a bare question and its chunks if none were rendered."""
    if request.messages:
        return [dict(m) for m in request.messages]
    context = "\n\n".join(c.text for c in request.chunks)
    content = f"Context:\n{context}\n\nQuestion: {request.question}" if context else request.question
    return [{"role": "user", "content": content}]


def merged_params(defaults: dict[str, Any], request: GenerationRequest) -> dict[str, Any]:
    """Endpoint defaults overridden by the request's own parameters."""
    return {**defaults, **request.params}
