"""The evidence kind is decided when the index is built and stored in the Lucene doc."""

from __future__ import annotations

import json

from kira.index_build.lucene import raw_doc
from kira.retriever.docstore import evidence_from_doc
from kira.schema import Passage


def test_kind_is_stored_at_build_time_and_read_back():
    cases = [(Passage("wn:1", "dog", "dog: a canine", "wordnet", {"kind": "kb_fact", "kb": "wordnet"}), "kb_fact"),
             (Passage("cars:0", "cars", "name | hp", "cars", {"table": "cars", "rows": [0, 9]}), "table"),
             (Passage("d:1", "Vienna", "Vienna is a city.", "docs", {}), "passage")]
    for p, kind in cases:
        doc = json.loads(raw_doc(p))
        assert doc["kind"] == kind
        ev = evidence_from_doc(doc, 1.0, "bm25", rank=1)
        assert ev.kind == kind and ev.source == p.source and ev.metadata["rank"] == 1
