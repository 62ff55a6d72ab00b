"""A Presidio analyzer and anonymizer that run fully offline, built once per process.

* NLP: a blank spaCy English pipeline (tokenizer only), so Presidio never tries to download
  `en_core_web_lg`. Detection relies on Presidio's pattern recognisers (email, phone, credit
  card, IBAN, IP, SSN, URL, ...); the NER-based recogniser is dropped.
* Email validation: Presidio calls `tldextract.extract`, which fetches the public suffix list
  over the network on first use. Our email recogniser uses a `TLDExtract` that reads only the
  snapshot bundled with tldextract and keeps no cache on disk.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from workbench.core.errors import MissingDependency

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_ENGINES: dict[str, PresidioEngines] = {}


@dataclass(frozen=True)
class PresidioEngines:
    analyzer: Any
    anonymizer: Any

    @property
    def supported_entities(self) -> set[str]:
        return set(self.analyzer.get_supported_entities(language="en"))


@cache
def offline_tld_extractor() -> Any:
    """A `tldextract.TLDExtract` that uses the bundled suffix snapshot and never the network."""
    import tldextract

    return tldextract.TLDExtract(cache_dir=None, suffix_list_urls=(), fallback_to_snapshot=True)


def _blank_spacy_engine() -> Any:
    import spacy
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    class BlankSpacyNlpEngine(SpacyNlpEngine):
        """SpacyNlpEngine over `spacy.blank("en")`: tokens for context words, no NER, no download."""

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]  # Presidio types it None

        def process_text(self, text: str, language: str) -> Any:
            # A blank pipeline has no lemmatizer; lower-cased tokens let Presidio's context
            # words ("phone", "card", ...) raise the score of a nearby finding.
            doc = self.nlp[language](text)  # type: ignore[index]
            for token in doc:
                token.lemma_ = token.lower_
            return self._doc_to_nlp_artifact(doc, language)

    engine = BlankSpacyNlpEngine(models=[{"lang_code": "en", "model_name": "blank:en"}])
    engine.load()
    return engine


def _offline_email_recognizer() -> Any:
    from presidio_analyzer.predefined_recognizers import EmailRecognizer

    class OfflineEmailRecognizer(EmailRecognizer):
        def validate_result(self, pattern_text: str) -> bool:
            return bool(offline_tld_extractor()(pattern_text).fqdn)

    return OfflineEmailRecognizer()


def _build() -> PresidioEngines:
    try:
        from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
        from presidio_analyzer.predefined_recognizers import EmailRecognizer, SpacyRecognizer
        from presidio_anonymizer import AnonymizerEngine
    except ImportError as exc:
        raise MissingDependency("presidio-analyzer", "guardrails") from exc

    nlp_engine = _blank_spacy_engine()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.load_predefined_recognizers(languages=["en"], nlp_engine=nlp_engine)
    # Drop the NER recogniser (a blank pipeline has no NER) and the online email validator.
    registry.recognizers = [r for r in registry.recognizers if not isinstance(r, SpacyRecognizer | EmailRecognizer)]
    registry.add_recognizer(_offline_email_recognizer())
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    log.info("built offline Presidio analyzer with %d recognisers", len(registry.recognizers))
    return PresidioEngines(analyzer=analyzer, anonymizer=AnonymizerEngine())


def presidio_engines() -> PresidioEngines:
    """The process-wide offline Presidio engines, built on first call (it takes a few seconds)."""
    with _LOCK:
        if "en" not in _ENGINES:
            _ENGINES["en"] = _build()
        return _ENGINES["en"]
