"""Where documents come from: a JSONL corpus, a dataset folder, or a folder of files."""

from __future__ import annotations

from pathlib import Path

from workbench.core.dataset import Document, load_corpus
from workbench.core.errors import DatasetError
from workbench.retrieval._imports import require


def load_documents(source: str | Path) -> list[Document]:
    """Documents from `source`.

    - a `.jsonl` file: a corpus of `{id, text, source?, title?}` rows;
    - a folder with `corpus.jsonl` (a dataset folder): that corpus;
    - any other folder: every readable file in it, via llama-index `SimpleDirectoryReader`,
      with the path relative to the folder as the document id.
    """
    path = Path(source)
    if path.is_file() and path.suffix == ".jsonl":
        docs = load_corpus(path)
    elif path.is_dir() and (path / "corpus.jsonl").is_file():
        docs = load_corpus(path / "corpus.jsonl")
    elif path.is_dir():
        docs = _read_folder(path)
    elif path.is_file():
        raise DatasetError(f"{path}: expected a .jsonl corpus or a folder of documents")
    else:
        raise DatasetError(f"{path}: no such file or folder to ingest")
    if not docs:
        raise DatasetError(f"{path}: the corpus is empty, nothing to ingest")
    return docs


def _read_folder(path: Path) -> list[Document]:
    readers = require("llama_index.core", "llama-index-core")
    files = [p for p in path.rglob("*") if p.is_file() and not p.name.startswith(".")]
    if not files:
        raise DatasetError(f"{path}: the folder has no files, nothing to ingest")
    try:
        loaded = readers.SimpleDirectoryReader(input_files=[str(p) for p in sorted(files)]).load_data()
    except Exception as exc:  # the reader raises bare ValueError/OSError subclasses
        raise DatasetError(f"{path}: could not read documents ({exc})") from exc
    docs: list[Document] = []
    parts: dict[str, int] = {}
    for item in loaded:
        text = item.text or ""
        if not text.strip():
            continue
        file_path = Path(item.metadata.get("file_path", ""))
        try:
            base = file_path.resolve().relative_to(path.resolve()).as_posix()
        except ValueError:
            base = file_path.name or item.doc_id
        # A PDF yields one document per page: number them so ids stay unique and stable.
        n = parts.get(base, 0)
        parts[base] = n + 1
        doc_id = base if n == 0 else f"{base}#p{n}"
        docs.append(Document(id=doc_id, text=text, source=str(file_path), title=file_path.name or None))
    return docs
