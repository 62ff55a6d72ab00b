import socket

import pytest

pytest.importorskip("presidio_analyzer")

from workbench.core.errors import ConfigError  # noqa: E402
from workbench.core.schema import PiiCheck  # noqa: E402
from workbench.core.state import RequestState  # noqa: E402
from workbench.guardrails import _presidio  # noqa: E402
from workbench.guardrails.pii import PiiGuard  # noqa: E402

TEXT = "Write to jane.doe@example.com, my phone number is (415) 867-5309 and my card is 4111 1111 1111 1111."


@pytest.fixture
def no_network(monkeypatch):
    """Any attempt to open a connection (or use tldextract's online extractor) fails the test."""
    import tldextract

    def refuse(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(tldextract, "extract", refuse)


@pytest.mark.slow
def test_engine_builds_and_masks_offline(no_network, monkeypatch):
    # Rebuild under the network guard so the build itself is covered, not just the inspection.
    monkeypatch.setattr(_presidio, "_ENGINES", {})
    result = PiiGuard(PiiCheck(check="pii")).inspect(TEXT, RequestState(query=TEXT))
    assert result.triggered
    assert result.masked_text == (
        "Write to <EMAIL_ADDRESS>, my phone number is <PHONE_NUMBER> and my card is <CREDIT_CARD>."
    )
    assert "CREDIT_CARD" in result.detail and "EMAIL_ADDRESS" in result.detail and "PHONE_NUMBER" in result.detail


def test_engines_are_shared_per_process():
    assert _presidio.presidio_engines() is _presidio.presidio_engines()


def test_clean_text_is_not_flagged(no_network):
    result = PiiGuard(PiiCheck(check="pii")).inspect("What year did Rollo swear fealty?", RequestState(query="q"))
    assert not result.triggered and result.masked_text is None


def test_only_configured_entities_are_masked(no_network):
    check = PiiGuard(PiiCheck(check="pii", entities=["EMAIL_ADDRESS"]))
    result = check.inspect(TEXT, RequestState(query="q"))
    assert result.masked_text is not None
    assert "<EMAIL_ADDRESS>" in result.masked_text and "4111 1111 1111 1111" in result.masked_text


def test_invalid_email_domain_is_not_an_email(no_network):
    result = PiiGuard(PiiCheck(check="pii", entities=["EMAIL_ADDRESS"])).inspect(
        "contact bob@localhost.invalidtld", RequestState(query="q")
    )
    assert not result.triggered


def test_unknown_entity_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown PII entities NOT_A_THING"):
        PiiGuard(PiiCheck(check="pii", entities=["NOT_A_THING"])).warm_up()
