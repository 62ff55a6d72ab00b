"""guardrails layer."""
