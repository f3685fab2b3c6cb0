"""The shapes knowledge takes as it flows through kira, and the role protocols.

Knowledge enters as records (``Passage``, ``Entity``, ``Relation``, ``Triple``), is searched as
``Evidence`` (a scored piece of text with provenance) and leaves as ``Answer``. Every retriever,
reader and KB model speaks these types, so components compose freely.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

EvidenceKind = Literal["passage", "kb_fact", "table"]


@dataclass
class Passage:
    """A retrievable unit of text (DPR-style ~100-word window, a verbalized entity, a table chunk)."""

    id: str
    title: str
    text: str
    source: str
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class Entity:
    id: str
    kb: str
    name: str
    aliases: list[str] = field(default_factory=list)
    description: str = ""


@dataclass
class Relation:
    id: str
    kb: str
    name: str


@dataclass
class Triple:
    kb: str
    head: str
    relation: str
    tail: str
    split: str = "train"


def passage_kind(metadata: dict[str, Any] | None) -> EvidenceKind:
    """What a stored passage is -- a KB fact, a table chunk or text -- from its provenance metadata.
    Decided once, when the index is built (the Lucene doc keeps ``kind``), not guessed per request."""
    meta = metadata or {}
    if meta.get("kind") in ("kb_fact", "table"):
        return meta["kind"]
    return "table" if meta.get("table") and "rows" in meta else "passage"


@dataclass
class Evidence:
    """A scored piece of evidence with provenance: where it came from and who found it.

    ``metadata`` carries kind-specific provenance: ``triples`` for KB facts,
    ``table``/``rows``/``cells`` for table chunks, ``source_path``/``position`` for passages.
    """

    id: str
    title: str
    text: str
    score: float
    kind: EvidenceKind = "passage"
    source: str = ""
    retriever: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Answer:
    """An answer and the evidence it rests on.

    ``span`` is (start, end) character offsets into ``evidence[0].text`` for extractive readers;
    ``cells`` are (row, column) coordinates for table answers. ``score`` is the reader's raw score
    (comparable within one reader); ``probability`` is what a user can read: the chance the answer
    is right, from the reader's calibration on held-out questions.
    """

    text: str
    score: float
    evidence: list[Evidence] = field(default_factory=list)
    reader: str = ""
    retriever: str = ""
    span: tuple[int, int] | None = None
    cells: list[tuple[int, int]] | None = None
    aggregation: str | None = None
    no_answer: bool = False
    probability: float | None = None  # P(correct) from the reader's calibration; None when uncalibrated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@runtime_checkable
class Encoder(Protocol):
    """Texts to vectors, batched. ``dim`` is the output width."""

    dim: int

    def encode(self, texts: Sequence[str], batch_size: int = 64) -> np.ndarray: ...


@runtime_checkable
class Retriever(Protocol):
    """Ranked evidence for a query. Every implementation runs ``kira.retriever.testing.RetrieverContract``:
    ``batch_search`` equals per-query ``search``, ties are deterministic, kind and provenance are
    set, ``close`` is idempotent. :class:`BaseRetriever` gives the defaults."""

    name: str

    def search(self, query: str, k: int = 100) -> list[Evidence]: ...

    def batch_search(self, queries: Sequence[str], k: int = 100) -> list[list[Evidence]]: ...

    def close(self) -> None: ...


class BaseRetriever:
    """Defaults for :class:`Retriever`: ``batch_search`` as one ``search`` per query (override it
    where a batch is cheaper), ``close`` releasing nothing."""

    name = "retriever"

    def batch_search(self, queries: Sequence[str], k: int = 100, threads: int | None = None) -> list[list[Evidence]]:
        return [self.search(q, k) for q in queries]

    def close(self) -> None:
        return None


@runtime_checkable
class Reader(Protocol):
    """Answers from evidence. Every implementation runs ``kira.reader.testing.ReaderContract``:
    ``read_batch`` equals per-question ``read``, answers come best first and cite only the evidence
    they were given, ``allow_no_answer=False`` never abstains. :class:`BaseReader` gives the defaults."""

    name: str

    def read(self, question: str, evidence: list[Evidence], top_n: int = 1,
             allow_no_answer: bool = True) -> list[Answer]: ...

    def read_batch(self, questions: Sequence[str], evidences: Sequence[list[Evidence]], top_n: int = 1,
                   allow_no_answer: bool = True) -> list[list[Answer]]: ...


class BaseReader:
    """Defaults for :class:`Reader`: ``read_batch`` as one ``read`` per question (a reader whose
    batch is cheaper overrides ``read_batch`` and reads one question as a batch of one)."""

    name = "reader"

    def read(self, question: str, evidence: list[Evidence], top_n: int = 1,
             allow_no_answer: bool = True) -> list[Answer]:
        return self.read_batch([question], [evidence], top_n, allow_no_answer)[0]

    def read_batch(self, questions: Sequence[str], evidences: Sequence[list[Evidence]], top_n: int = 1,
                   allow_no_answer: bool = True) -> list[list[Answer]]:
        if type(self).read is BaseReader.read:
            raise NotImplementedError(f"{type(self).__name__} must override read or read_batch")
        return [self.read(q, evs, top_n, allow_no_answer) for q, evs in zip(questions, evidences, strict=True)]


@runtime_checkable
class KnowledgeSource(Protocol):
    """A plug-in source of knowledge. Records carry (path, line) so errors can name them."""

    name: str

    def iter_records(self) -> Iterator[Passage | Entity | Relation | Triple]: ...


@runtime_checkable
class KBEmbedder(Protocol):
    """Link-prediction model over a KB: TransE/H/D, KEPLER, Graph-BERT, GraphFormers."""

    def fit(self, triples: Iterable[Triple]) -> Any: ...

    def score(self, heads: np.ndarray, relations: np.ndarray, tails: np.ndarray) -> np.ndarray: ...

    def rank_tails(self, head: str, relation: str, k: int = 10) -> list[tuple[str, float]]: ...
