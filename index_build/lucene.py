"""The BM25 half of a version: a Lucene index written through pyserini, in process.

Documents are pyserini ``JsonCollection`` rows whose stored raw JSON is the passage itself
(``id``, ``title``, ``text``, ``contents``, ``source``, ``metadata``), so the Lucene index doubles as
the version's document store. Deletes and segment merges go through Lucene's own ``IndexWriter``
(via pyjnius), because pyserini's ``SimpleIndexer`` only appends.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

from kira.index_build.shards import passage_contents
from kira.schema import Passage, passage_kind

ID_FIELD = "id"  # Anserini's Constants.ID, an indexed StringField


def raw_doc(p: Passage) -> str:
    return json.dumps({"id": p.id, "title": p.title, "text": p.text,
                       "contents": passage_contents(p.title, p.text), "source": p.source,
                       "kind": passage_kind(p.metadata), "metadata": p.metadata}, ensure_ascii=False)


def _threads() -> int:
    return max(1, min(8, os.cpu_count() or 1))


MEMORY_BUFFER_MB = 256  # Lucene's in-RAM indexing buffer (Anserini's default is GBs): bounds RSS
DEFAULT_JVM_HEAP = "2g"  # when index_build starts the JVM; override with KIRA_JVM_HEAP


def _bounded_jvm() -> None:
    """Cap the JVM heap if the JVM is not running yet, so a build's memory does not grow with N."""
    from kira.jvm import ensure_java

    ensure_java()
    import jnius_config

    if not jnius_config.vm_running and not any(o.startswith("-Xmx") for o in jnius_config.get_options()):
        jnius_config.add_options(f"-Xmx{os.environ.get('KIRA_JVM_HEAP', DEFAULT_JVM_HEAP)}")


class LuceneWriter:
    """Append passages to a (new or existing) Lucene index; ``close()`` commits."""

    def __init__(self, index_dir: str | os.PathLike, append: bool = False):
        from kira.jvm import import_pyserini

        _bounded_jvm()
        _, LuceneIndexer = import_pyserini()
        Path(index_dir).mkdir(parents=True, exist_ok=True)
        self._indexer = LuceneIndexer(args=["-index", str(index_dir), "-storeRaw",
                                            "-memoryBuffer", str(MEMORY_BUFFER_MB)],
                                      append=append, threads=_threads())
        self.n = 0

    def add(self, passages: Iterable[Passage]) -> int:
        return self.add_raw([raw_doc(p) for p in passages])

    def add_raw(self, docs: list[str]) -> int:
        """Add documents already rendered by ``raw_doc`` (the build also writes them to the docstore)."""
        if docs:
            self._indexer.add_batch_raw(docs)
        self.n += len(docs)
        return len(docs)

    def close(self) -> None:
        self._indexer.close()


def _index_writer(index_dir: Path):
    from kira.jvm import java_class as autoclass

    FSDirectory = autoclass("org.apache.lucene.store.FSDirectory")
    File = autoclass("java.io.File")
    IndexWriter = autoclass("org.apache.lucene.index.IndexWriter")
    IndexWriterConfig = autoclass("org.apache.lucene.index.IndexWriterConfig")
    OpenMode = autoclass("org.apache.lucene.index.IndexWriterConfig$OpenMode")
    Analyzer = autoclass("io.anserini.analysis.DefaultEnglishAnalyzer")
    cfg = IndexWriterConfig(Analyzer.newDefaultInstance())
    cfg.setOpenMode(OpenMode.APPEND)
    return IndexWriter(FSDirectory.open(File(str(index_dir)).toPath()), cfg)


def delete_ids(index_dir: str | os.PathLike, ids: Iterable[str], chunk: int = 512) -> None:
    """Delete documents by passage id (Lucene term deletes on the ``id`` field)."""
    from kira.jvm import java_class as autoclass

    writer = _index_writer(Path(index_dir))
    Term = autoclass("org.apache.lucene.index.Term")
    TermQuery = autoclass("org.apache.lucene.search.TermQuery")
    try:
        ids = list(ids)
        for s in range(0, len(ids), chunk):
            # pyjnius resolves the Query... varargs overload only for TermQuery arguments
            writer.deleteDocuments(*[TermQuery(Term(ID_FIELD, i)) for i in ids[s:s + chunk]])
        writer.commit()
    finally:
        writer.close()


def force_merge(index_dir: str | os.PathLike, segments: int = 1) -> None:
    """Merge segments and expunge deleted documents (``kira index compact``)."""
    writer = _index_writer(Path(index_dir))
    try:
        writer.forceMerge(segments)
        writer.commit()
    finally:
        writer.close()


def num_docs(index_dir: str | os.PathLike) -> int:
    """Live (non-deleted) documents."""
    from kira.jvm import java_class as autoclass

    FSDirectory = autoclass("org.apache.lucene.store.FSDirectory")
    File = autoclass("java.io.File")
    DirectoryReader = autoclass("org.apache.lucene.index.DirectoryReader")
    reader = DirectoryReader.open(FSDirectory.open(File(str(index_dir)).toPath()))
    try:
        return int(reader.numDocs())
    finally:
        reader.close()


def stored_ids(index_dir: str | os.PathLike) -> set[str]:
    """Passage ids of the live documents (read on a failed verification, to name the culprits)."""
    from kira.jvm import java_class as autoclass

    FSDirectory = autoclass("org.apache.lucene.store.FSDirectory")
    File = autoclass("java.io.File")
    DirectoryReader = autoclass("org.apache.lucene.index.DirectoryReader")
    MultiBits = autoclass("org.apache.lucene.index.MultiBits")
    reader = DirectoryReader.open(FSDirectory.open(File(str(index_dir)).toPath()))
    try:
        live = MultiBits.getLiveDocs(reader)
        fields = reader.storedFields()
        return {fields.document(i).get(ID_FIELD) for i in range(reader.maxDoc())
                if live is None or live.get(i)}
    finally:
        reader.close()


def link_copy(src: Path, dst: Path) -> None:
    """Copy-on-write clone of a Lucene index: hard links (Lucene never rewrites a file in place)."""
    def _link(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    # write.lock is per-directory state; linking it would share one lock inode between versions
    shutil.copytree(src, dst, copy_function=_link, ignore=shutil.ignore_patterns("write.lock"))


def searcher(index_dir: str | os.PathLike, k1: float | None = None, b: float | None = None):
    from kira.jvm import import_pyserini

    LuceneSearcher, _ = import_pyserini()
    s = LuceneSearcher(str(index_dir))
    if k1 is not None and b is not None:
        s.set_bm25(float(k1), float(b))
    return s
