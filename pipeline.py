"""``QAPipeline``: question → retrieve (text, KB facts, graph, tables) → read → ``AskResult``.

One object per index version: the retrievers over that version, the workspace's readers (loaded
lazily, so a text-only ask never pays for FiD or TAPAS), and the optional KB-fact, graph-expansion
and table components when their code and artifacts are present. ``ask_batch`` retrieves and
reads a batch of questions together so the HTTP server's micro-batches share forward passes.

Which answer wins: a table answer when the best-ranked evidence is a table chunk (and a table
model exists), else the text reader's (extractive or FiD) over passages and KB facts. A reader
may abstain ("no answer") when its calibrated threshold says its best guess is more likely wrong.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kira.errors import KiraError
from kira.schema import Answer, Evidence, passage_kind

log = logging.getLogger(__name__)
SOURCES = ("all", "text", "kb", "tables")
READERS = ("extractive", "fid")
TABLE_ROUTE_SCORE = 0.35  # tables.parser.pick_table score above which a question is taken as about a table
KIND_FOR = {"text": {"passage"}, "kb": {"kb_fact"}, "tables": {"table"},
            "all": {"passage", "kb_fact", "table"}}


@dataclass
class AskResult:
    """The answer (or an abstention), the evidence read, who produced it, and how long it took."""

    question: str
    answer: Answer | None
    answers: list[Answer] = field(default_factory=list)
    evidence: list[Evidence] = field(default_factory=list)
    retriever: str = ""
    reader: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    index_version: str = ""

    @property
    def text(self) -> str:
        return self.answer.text if self.answer and not self.answer.no_answer else ""

    def to_dict(self) -> dict[str, Any]:
        a = self.answer.to_dict() if self.answer else None
        return {"question": self.question, "answer": a, "text": self.text,
                "score": self.answer.score if self.answer else None,
                "probability": self.answer.probability if self.answer else None,
                "no_answer": self.answer is None or self.answer.no_answer,
                "span": list(self.answer.span) if self.answer and self.answer.span else None,
                "answers": [x.to_dict() for x in self.answers], "evidence": [e.to_dict() for e in self.evidence],
                "retriever": self.retriever, "reader": self.reader, "timings": dict(self.timings),
                "index_version": self.index_version}


def evidence_kind(e: Evidence) -> str:
    """The evidence kind: the one the index stored at build time; for versions built before it did,
    derived from the provenance metadata the same way (``schema.passage_kind``)."""
    return e.kind if e.kind != "passage" else passage_kind(e.metadata)


def default_reader_dir(cfg, kind: str) -> Path:
    """``models/reader-<kind>``: the workspace's default extractive or FiD reader."""
    from kira.artifacts import role_dir

    return role_dir(cfg.models_dir, f"reader-{kind}")


class QAPipeline:
    """Retrievers + readers over one index version."""

    def __init__(self, cfg, version, retrievers: dict[str, Any], store=None, readers: dict[str, Any] | None = None):
        self.cfg = cfg
        self.version = version
        self.retrievers = retrievers
        self._store = store
        self._readers: dict[str, Any] = dict(readers or {})
        self._extra: dict[str, Any] = {}

    @classmethod
    def from_config(cls, cfg, version=None, store=None) -> QAPipeline:
        """Current index version of the workspace (or ``version``), its retrievers and readers."""
        from kira.retriever import open_retrievers, resolve_version

        version = resolve_version(version) if version is not None else resolve_version(cfg.indexes_dir)
        return cls(cfg, version, open_retrievers(version, cfg), store=store)

    @property
    def index_version(self) -> str:
        return getattr(self.version, "name", "") or Path(str(getattr(self.version, "path", ""))).name

    @property
    def store(self):
        """The read-only store snapshot of this pipeline's index version (``kira.workspace``), so KB
        facts, tables and graph expansion answer from the same version as the passages and the live
        store stays free for writers."""
        if self._store is None:
            from kira.workspace import answering_store

            self._store = answering_store(self.cfg, self.version)
        return self._store

    # ---- components -------------------------------------------------------------------------
    def reader(self, kind: str):
        """The workspace's ``extractive`` or ``fid`` reader (config spec, else models/reader-<kind>)."""
        if kind not in READERS:
            raise KiraError(f"reader must be one of {', '.join(READERS)}, got {kind!r}")
        if kind not in self._readers:
            spec = getattr(self.cfg.reader, kind) or default_reader_dir(self.cfg, kind)
            if not Path(str(spec)).exists() and spec == default_reader_dir(self.cfg, kind):
                raise KiraError(f"no {kind} reader: {spec} does not exist; train one with `kira reader train "
                                f"--kind {kind}` or set reader.{kind} in kira.toml")
            if kind == "extractive":
                from kira.reader.extractive import ExtractiveReader as R
            else:
                from kira.reader.fid import FiDReader as R
            reader = R.load(str(spec), device=self.cfg.device, bf16=self.cfg.bf16,
                            no_answer_threshold=self.cfg.reader.no_answer_threshold)
            if kind == "extractive":  # the K-Adapters of this version's KBs (kira kb add --adapter)
                from kira.reader.knowledge_reader import with_kb_adapters

                reader = with_kb_adapters(reader, self.cfg.models_dir, self.store)
                if self.cfg.reader.kb_answer_types and self.store is not None:
                    from kira.kb.answer_types import AnswerTypes

                    reader.answer_types = AnswerTypes.from_store(self.store)  # None without type relations
            self._readers[kind] = reader
        return self._readers[kind]

    def _component(self, name: str):
        """The KB-fact retriever and graph expansion (when the version's snapshot holds a KB) and the
        table reader (when the workspace has a table model and the snapshot holds tables), built
        once. A component the workspace calls for that fails to load raises: answers never get
        silently worse."""
        if name in self._extra:
            return self._extra[name]
        obj = None
        store = self.store
        if name == "kb" and store is not None and store.list_kbs():
            from kira.kb.linking import KBFactRetriever
            from kira.retriever.dense import manifest_encoder

            obj = KBFactRetriever.from_config(self.cfg, store)
            dense = self.retrievers.get("dense")
            if dense is not None and manifest_encoder(dense.manifest).get("spec") == obj.linker.encoder_spec:
                obj.linker.use_passage_vectors(dense.passage_vectors)  # same encoder: no re-encoding
        elif name == "graph" and store is not None and store.list_kbs():
            from kira.graph.expansion import GraphExpansionRetriever

            obj = GraphExpansionRetriever.from_config(self.cfg, store=store)
        elif name == "tables" and store is not None and store.list_tables():
            from kira.artifacts import role_dir

            parser_dir = role_dir(self.cfg.models_dir, "table-parser")
            tapas_dir = role_dir(self.cfg.models_dir, "table-qa")
            from kira.tables.defaults import parser_is_current

            if (parser_dir / "kira.json").exists() and parser_is_current(parser_dir):  # else TAPAS until retrained
                from kira.tables.answer import ParserTableReader

                obj = ParserTableReader(str(parser_dir), store,
                                        str(tapas_dir) if (tapas_dir / "kira.json").exists() else None)
            elif (tapas_dir / "kira.json").exists():
                from kira.tables.reader import TableReader

                obj = TableReader(str(tapas_dir), store)
        self._extra[name] = obj
        return obj

    def _graph_cached(self) -> bool:
        from kira.artifacts import role_dir

        d = role_dir(self.cfg.models_dir, "graph-cache")
        return d.is_dir() and any(d.iterdir())

    # ---- retrieval --------------------------------------------------------------------------
    def _method(self, method: str | None) -> str:
        method = method or self.cfg.retriever.default_method
        if method not in self.retrievers:
            if method in ("bm25", "dense", "hybrid") and "bm25" in self.retrievers:
                return "bm25"  # an index without vectors: lexical only
            raise KiraError(f"retrieval method {method!r} not available (have {', '.join(self.retrievers)})")
        return method

    def retrieve_batch(self, questions: Sequence[str], k: int = 10, sources: str = "all",
                       method: str | None = None) -> tuple[list[list[Evidence]], str]:
        """Top-k evidence per question from the sources asked for, fused across retrievers."""
        if sources not in SOURCES:
            raise KiraError(f"sources must be one of {', '.join(SOURCES)}, got {sources!r}")
        method = self._method(method)
        ret = self.retrievers[method]
        depth = k if sources == "all" else 3 * k  # filtering by kind needs headroom
        hits = ret.batch_search(list(questions), k=depth)
        kinds = KIND_FOR[sources]
        hits = [[e for e in hs if evidence_kind(e) in kinds] for hs in hits]
        names = [method]
        if sources in ("kb", "all"):
            # graph expansion walks the KB graph; on "all" only once its view is cached (cheap)
            graph = self._component("graph") if sources == "kb" or self._graph_cached() else None
            extra = [r for r in (self._component("kb"), graph) if r is not None]
            if extra:
                from kira.retriever.fusion import fuse_evidence

                for r in extra:
                    more = r.batch_search(list(questions), k=k)
                    names.append(getattr(r, "name", type(r).__name__))
                    hits = [fuse_evidence([h, m], k=max(k, len(h))) for h, m in zip(hits, more, strict=True)]
        return [h[:k] for h in hits], "+".join(names)

    # ---- asking -----------------------------------------------------------------------------
    def ask(self, question: str, k: int = 10, sources: str = "all", reader: str = "extractive",
            method: str | None = None) -> AskResult:
        return self.ask_batch([question], k=k, sources=sources, reader=reader, method=method)[0]

    def ask_batch(self, questions: Sequence[str], k: int = 10, sources: str = "all", reader: str = "extractive",
                  method: str | None = None) -> list[AskResult]:
        """Retrieve and read many questions together (the reader batches all their passages)."""
        if not questions:
            return []
        t0 = time.perf_counter()
        evidences, ret_name = self.retrieve_batch(questions, k=k, sources=sources, method=method)
        t1 = time.perf_counter()
        text_reader = self.reader(reader) if sources != "tables" else None
        text_answers = (text_reader.read_batch(list(questions), [[e for e in evs if evidence_kind(e) != "table"]
                                                                 for evs in evidences], top_n=3)
                        if text_reader is not None else [[] for _ in questions])
        t2 = time.perf_counter()
        table_reader = self._component("tables") if sources in ("tables", "all") else None
        results = []
        for q, evs, answers in zip(questions, evidences, text_answers, strict=True):
            used = text_reader.name if text_reader is not None else ""
            if table_reader is not None and self._table_first(table_reader, sources, evs):
                table_answers = table_reader.read(q, [e for e in evs if evidence_kind(e) == "table"], top_n=1)
                if table_answers and self._table_wins(table_answers[0], answers, sources):
                    answers, used = table_answers + answers, table_answers[0].reader or table_reader.name
                    evs = [*table_answers[0].evidence, *evs]
            t3 = time.perf_counter()
            best = answers[0] if answers else None
            results.append(AskResult(
                question=q, answer=best, answers=answers, evidence=evs, retriever=ret_name, reader=used,
                index_version=self.index_version,
                timings={"retrieve_s": (t1 - t0) / len(questions), "read_s": (t2 - t1) / len(questions),
                         "table_s": t3 - t2, "total_s": (t3 - t0) / len(questions), "batch": float(len(questions))}))
        return results

    @staticmethod
    def _table_first(table_reader, sources: str, evs: list[Evidence]) -> bool:
        """Whether to ask the table reader: always for ``sources=tables``; for ``all``, the parser
        routes by itself (header, value and caption matches), TAPAS only when a table chunk ranks first."""
        if sources == "tables":
            return True
        return hasattr(table_reader, "route") or bool(evs and evidence_kind(evs[0]) == "table")

    @staticmethod
    def _table_wins(table_answer: Answer, text_answers: list[Answer], sources: str) -> bool:
        """A table answer replaces the text reader's unless the question only weakly links to the
        table and the text reader is more confident."""
        if sources == "tables" or not text_answers or text_answers[0].no_answer:
            return True
        table_score = float((table_answer.evidence[0].metadata or {}).get("table_score", 1.0)) \
            if table_answer.evidence else 1.0
        return table_score >= TABLE_ROUTE_SCORE or table_answer.score >= text_answers[0].score

    def close(self) -> None:
        for r in self.retrievers.values():
            close = getattr(r, "close", None)
            if callable(close):
                close()


def render_result(result: AskResult, console=None) -> None:
    """Pretty terminal output for ``kira ask``: the answer, then the evidence with the span marked."""
    from rich.console import Console
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    a = result.answer
    head = Text()
    if a is None or a.no_answer:
        head.append("no answer", style="bold yellow")
        if a is not None and len(result.answers) > 1:
            head.append(f"  (best guess: {result.answers[1].text!r}, score {result.answers[1].score:.3f})")
    else:
        head.append(a.text, style="bold green")
        head.append(f"  P(correct) {a.probability:.2f}" if a.probability is not None else f"  score {a.score:.3f}")
    head.append(f"\nreader {result.reader} · retriever {result.retriever} · index {result.index_version} · "
                f"{result.timings.get('total_s', 0.0) * 1000:.0f} ms")
    console.print(Panel(head, title=result.question, expand=False))
    cited = {e.id for e in (a.evidence if a else [])}
    table = Table(show_lines=False)
    for col in ("#", "retriever score", "kind", "title", "text"):
        table.add_column(col)
    for i, e in enumerate(result.evidence[:10], 1):
        text = Text(e.text[:300] + ("…" if len(e.text) > 300 else ""))
        if a is not None and a.span and a.evidence and e.id == a.evidence[0].id and a.span[1] <= 300:
            text.stylize("bold reverse", a.span[0], a.span[1])
        own = (e.metadata or {}).get("retriever_score", e.score)  # not the fused rank score
        table.add_row(str(i) + ("*" if e.id in cited else ""), f"{own:.3f}", evidence_kind(e), e.title or "", text)
    console.print(table)
