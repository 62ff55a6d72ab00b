from __future__ import annotations

from workbench.core.dataset import EvidenceSpan
from workbench.core.state import Chunk
from workbench.retrieval import evidence_hit, first_hit_rank


def _chunk(doc: str, start: int, end: int) -> Chunk:
    return Chunk(chunk_id=f"{doc}#{start}", doc_id=doc, text="x" * (end - start), start=start, end=end)


def test_hit_needs_same_doc_and_overlapping_span() -> None:
    gold = [EvidenceSpan(doc_id="d1", start=100, end=110)]
    chunks = [_chunk("d2", 90, 200), _chunk("d1", 0, 100), _chunk("d1", 105, 300)]
    assert first_hit_rank(chunks, gold) == 3  # [0,100) touches but does not overlap [100,110)
    assert evidence_hit(chunks, gold)
    assert not evidence_hit(chunks, gold, k=2)
    assert first_hit_rank(chunks[:2], gold) is None
    assert first_hit_rank([_chunk("d1", 109, 120)], gold) == 1
    assert not evidence_hit(chunks, [])
