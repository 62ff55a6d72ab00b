"""The graph retriever on a tiny hand-made corpus: a chunk two hops from the query's entity that
hybrid search alone misses is found, and fusion puts it in the results; off changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from workbench.core.config import validate_config
from workbench.core.dataset import Document
from workbench.core.errors import ConfigError
from workbench.core.schema import GraphRetrievalConfig, IngestionConfig, RetrievalConfig
from workbench.core.state import RequestState
from workbench.retrieval import RetrievalIndex, RetrieverStage, ingest

REPO = Path(__file__).resolve().parents[2]
QUERY = "Who is the harbour master of the river port where the company that Alice Smith founded is based?"
PORTS = ["Lund", "Aldmere", "Westwick", "Caddon", "Perrin", "Sollby", "Tarnow", "Umbra"]
DISTRACTORS = [
    Document(
        id=f"port-{name.lower()}",
        title=name,
        text=f"{name} is a river port where many a company is based. The harbour master of the river port "
        f"{name} is {first} {name}son.",
    )
    for name, first in zip(PORTS, ["Erik", "Mara", "Ivo", "Lena", "Otto", "Pia", "Rune", "Sten"], strict=True)
]
CHAIN = [
    Document(
        id="alice", title="Alice Smith", text="Alice Smith is a chemist. In 1999 Alice Smith founded Zentrix Corp."
    ),
    Document(id="zentrix", title="Zentrix Corp", text="Zentrix Corp makes valves. Its offices are in Bergholm."),
    Document(id="bergholm", title="Bergholm", text="Bergholm lies on a delta. Its harbour master is Carol Dunn."),
]
HYBRID = RetrievalConfig(top_k=3, candidates=10)
GRAPH = HYBRID.model_copy(update={"graph": GraphRetrievalConfig(hops=2)})


@pytest.fixture(scope="module")
def indexes(tmp_path_factory) -> tuple[RetrievalIndex, RetrievalIndex]:
    from workbench.testing.embedders import HashingEmbedder

    embedder = HashingEmbedder(256, min_token_len=3, fingerprint="fake-v1")
    folder = tmp_path_factory.mktemp("graph")
    out = []
    for name, graph in (("plain", None), ("graph", "heuristic")):
        ingestion = IngestionConfig(chunk_size=64, chunk_overlap=8, graph=graph)
        ingest(CHAIN + DISTRACTORS, store=folder / f"{name}.duckdb", ingestion=ingestion, embedder=embedder)
        out.append(RetrievalIndex.open(folder / f"{name}.duckdb", embedder))
    return out[0], out[1]


def test_hybrid_alone_misses_the_second_hop(indexes) -> None:
    _, index = indexes
    assert "bergholm" not in {c.doc_id for c in index.search(QUERY, HYBRID)}


def test_graph_walks_two_hops_to_it_and_fusion_keeps_it(indexes) -> None:
    _, index = indexes
    assert index.graph is not None
    assert set(index.graph.link(QUERY, 5)) == {"alice smith"}
    qv = index.embed_query(QUERY)
    one_hop = index.graph_search(QUERY, qv, HYBRID.model_copy(update={"graph": GraphRetrievalConfig(hops=1)}))
    assert "bergholm" not in {index.data.doc_ids[row] for row, _ in one_hop}
    two_hop = index.graph_search(QUERY, qv, GRAPH)
    assert "bergholm" in {index.data.doc_ids[row] for row, _ in two_hop}

    fused = index.search(QUERY, GRAPH)
    by_doc = {c.doc_id: c for c in fused}
    assert "bergholm" in by_doc
    assert "graph" in by_doc["bergholm"].scores and "fused" in by_doc["bergholm"].scores
    assert "Carol Dunn" in by_doc["bergholm"].text


def test_weighted_fusion_adds_the_graph_share(indexes) -> None:
    _, index = indexes
    fused = index.search(QUERY, GRAPH.model_copy(update={"fusion": "weighted"}))
    plain = index.search(QUERY, HYBRID.model_copy(update={"fusion": "weighted"}))
    # The graph's best chunk (the seed's own article) gains the graph's full weight, 1.0.
    top = fused[0]
    assert top.doc_id == "alice" and top.scores["graph"] > 0
    before = next(c.score for c in plain if c.doc_id == "alice")
    assert top.score == pytest.approx(before + 1.0)


def test_graph_off_leaves_results_and_cache_keys_unchanged(indexes) -> None:
    plain, graphed = indexes
    before = [(c.chunk_id, c.score) for c in plain.search(QUERY, HYBRID)]
    assert [(c.chunk_id, c.score) for c in graphed.search(QUERY, HYBRID)] == before
    state = RequestState(query=QUERY)
    stage = RetrieverStage(HYBRID, plain)
    assert "graph" not in stage.config_fingerprint()["config"]
    assert stage.config_fingerprint()["config"] == HYBRID.model_dump(mode="json", exclude={"graph"})
    assert RetrieverStage(GRAPH, graphed).cache_key(state) != RetrieverStage(HYBRID, graphed).cache_key(state)


def test_graph_on_an_index_without_one_is_a_typed_error(indexes) -> None:
    plain, _ = indexes
    with pytest.raises(ConfigError, match="no entity graph; set ingestion.graph"):
        plain.search(QUERY, GRAPH)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"graph": {"hops": 3}}, "graph.hops"),
        ({"graph": {"weight": 0}}, "graph.weight"),
        ({"graph": {"depth": 2}}, "unknown key 'graph.depth'"),
        ({"mode": "bm25", "graph": {}}, "fuses with hybrid search only"),
    ],
)
def test_bad_graph_config_is_one_typed_line(data, message) -> None:
    with pytest.raises(ConfigError, match=message) as err:
        validate_config(RetrievalConfig, data, "graph.yaml")
    assert "\n" not in str(err.value) and str(err.value).startswith("graph.yaml: ")


def test_pipeline_needs_the_graph_extracted_at_ingest() -> None:
    import yaml

    from workbench.core.config import load_yaml
    from workbench.core.schema import PipelineConfig

    example = REPO / "experiments" / "graph.yaml"
    config = load_yaml(PipelineConfig, example)
    assert config.ingestion.graph == "heuristic" and config.retrieval.graph == GraphRetrievalConfig()
    data = yaml.safe_load(example.read_text())
    del data["ingestion"]["graph"]
    with pytest.raises(ConfigError, match=r"graph.yaml: .*retrieval.graph needs ingestion.graph"):
        validate_config(PipelineConfig, data, "graph.yaml")


def test_a_route_can_turn_the_graph_on_for_itself_and_is_validated_whole() -> None:
    import yaml

    from workbench.core.schema import PipelineConfig

    data = yaml.safe_load((REPO / "experiments" / "graph.yaml").read_text())
    del data["retrieval"]["graph"]
    data["routing"] = {
        "default": "general",
        "routes": {
            "general": {},
            "bridge": {"utterances": ["who led the place where"], "retrieval": {"graph": {"hops": 1}}},
        },
    }
    config = validate_config(PipelineConfig, data, "graph.yaml")
    assert config.route_retrieval("general") is config.retrieval and config.retrieval.graph is None
    assert config.route_retrieval("bridge").graph == GraphRetrievalConfig(hops=1)
    assert config.route_retrieval("bridge").model_dump(exclude={"graph"}) == config.retrieval.model_dump(
        exclude={"graph"}
    )
    data["routing"]["routes"]["bridge"]["retrieval"]["mode"] = "bm25"
    with pytest.raises(ConfigError, match=r"routing.routes.bridge.retrieval: .*fuses with hybrid search only") as err:
        validate_config(PipelineConfig, data, "graph.yaml")
    assert "\n" not in str(err.value)
    data["routing"]["routes"]["bridge"]["retrieval"] = {"graph": {}}
    del data["ingestion"]["graph"]
    with pytest.raises(ConfigError, match=r"routing.routes.bridge.retrieval.graph needs ingestion.graph"):
        validate_config(PipelineConfig, data, "graph.yaml")
