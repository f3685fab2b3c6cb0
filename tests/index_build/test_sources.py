"""Source ingestion: formats, DPR windows, stable ids, replacement, and transactional rejection of
bad rows with file/line/field."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from kira.errors import IngestError, KiraError
from kira.index_build.sources import ingest_source, strip_html, windows


def passages(store, source):
    return [p for batch in store.iter_passages(source) for p in batch]


def test_windows_overlap_and_tail():
    text = " ".join(f"w{i}" for i in range(250))
    assert [len(w.split()) for w in windows(text, 100, 0)] == [100, 100, 50]
    wins = windows(text, 100, 20)
    assert [len(w.split()) for w in wins] == [100, 100, 90]
    assert wins[1].split()[0] == "w80" and wins[2].split()[0] == "w160"
    assert windows(" ".join(["x"] * 100), 100, 20) == [" ".join(["x"] * 100)]  # no overlap-only tail
    with pytest.raises(KiraError):
        windows(text, 10, 10)


def test_jsonl_ids_metadata_and_reingest(store, tmp_path):
    f = tmp_path / "docs.jsonl"
    long = " ".join(f"w{i}" for i in range(150))
    f.write_text(json.dumps({"id": "a", "title": "A", "text": long, "url": "http://a"}) + "\n\n"
                 + json.dumps({"title": "B", "contents": "bee text"}) + "\n")
    assert ingest_source(store, f"jsonl:{f}") == "docs"
    ps = passages(store, "docs")
    assert [p.id for p in ps] == ["docs:1:0", "docs:a:0", "docs:a:1"]  # position id for the id-less row
    a1 = next(p for p in ps if p.id == "docs:a:1")
    assert a1.title == "A" and a1.text.split()[0] == "w100"
    assert a1.metadata["url"] == "http://a" and a1.metadata["line"] == 1 and a1.metadata["window"] == 1
    src = store.get_source("docs")
    assert src["kind"] == "text:jsonl" and src["n_records"] == 3 and len(src["checksum"]) == 64
    # re-ingest of changed input replaces the source's passages, same ids for unchanged rows
    f.write_text(json.dumps({"id": "a", "title": "A", "text": "short now"}) + "\n")
    ingest_source(store, f"jsonl:{f}")
    assert [p.id for p in passages(store, "docs")] == ["docs:a:0"]
    assert store.get_source("docs")["version"] == 2 and store.get_source("docs")["checksum"] != src["checksum"]


@pytest.mark.parametrize("content,line,field", [
    (b'{"id": 1, "text": "ok"}\n{"id": 2, "text": "ok"\n', 2, None),          # bad JSON
    (b'{"id": 1, "text": "ok"}\n{"id": 2, "title": "no text"}\n', 2, "text"),  # missing text
    (b'{"id": 1, "text": "ok"}\n{"id": 2, "text": "caf\xe9"}\n', 2, None),     # undecodable bytes
    (b'{"id": 1, "text": "ok"}\n{"id": 1, "text": "again"}\n', 2, "id"),      # duplicate id
    (b'{"id": 1, "text": "ok"}\n[1, 2]\n', 2, None),                           # not an object
    (b'{"id": 1, "text": "ok"}\n{"id": 2, "text": ""}\n', 2, "text"),         # empty text
])
def test_bad_jsonl_rows_rejected_nothing_stored(store, tmp_path, content, line, field):
    good = tmp_path / "good.jsonl"
    good.write_text('{"id": "g", "text": "kept passage"}\n')
    ingest_source(store, f"jsonl:{good}", name="bad")  # an earlier good version of the same source
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    with pytest.raises(IngestError) as ei:
        ingest_source(store, f"jsonl:{bad}", replace=True)
    e = ei.value
    assert e.path == str(bad) and e.line == line and e.field == field
    assert f"bad.jsonl:{line}" in str(e)
    # nothing half-written: the old version of the source is intact
    assert [p.id for p in passages(store, "bad")] == ["bad:g:0"]
    assert store.get_source("bad")["version"] == 1


def test_csv_and_bad_csv(store, tmp_path):
    f = tmp_path / "t.csv"
    f.write_text('id,title,text,year\n1,One,"first, with comma",1999\n2,Two,second,2000\n')
    ingest_source(store, f"csv:{f}")
    ps = passages(store, "t")
    assert [(p.id, p.text, p.metadata["year"]) for p in ps] == [("t:1:0", "first, with comma", "1999"),
                                                                ("t:2:0", "second", "2000")]
    bad = tmp_path / "b.csv"
    bad.write_text("id,title,text\n1,One,fine\n2,Two\n")
    with pytest.raises(IngestError, match=r"b\.csv:3"):
        ingest_source(store, f"csv:{bad}")
    nohdr = tmp_path / "c.csv"
    nohdr.write_text("id,title,body\n1,x,y\n")
    with pytest.raises(IngestError, match="text"):
        ingest_source(store, f"csv:{nohdr}")
    assert store.count_passages() == 2 and store.get_source("b") is None


def test_parquet(store, tmp_path):
    f = tmp_path / "p.parquet"
    pd.DataFrame({"id": ["x", "y"], "title": ["X", "Y"], "text": ["ex text", None],
                  "score": [0.5, 0.7]}).to_parquet(f)
    with pytest.raises(IngestError) as ei:
        ingest_source(store, f"parquet:{f}")
    assert ei.value.line == 2 and ei.value.field == "text"
    assert store.count_passages() == 0
    pd.DataFrame({"id": ["x", "y"], "title": ["X", "Y"], "text": ["ex text", "why text"],
                  "score": [0.5, 0.7]}).to_parquet(f)
    ingest_source(store, f"parquet:{f}")
    assert [(p.id, p.metadata["score"]) for p in passages(store, "p")] == [("p:x:0", 0.5), ("p:y:0", 0.7)]


def test_dir_source_strips_html(store, tmp_path):
    d = tmp_path / "pages"
    (d / "sub").mkdir(parents=True)
    (d / "a.html").write_text("<html><head><title>Page A</title><style>p{}</style></head>"
                              "<body><p>Hello &amp; welcome</p><script>var x;</script><p>bye</p></body></html>")
    (d / "sub" / "b.md").write_text("# Bee\nmarkdown body")
    (d / "c.txt").write_text("plain text file")
    (d / "skip.bin").write_bytes(b"\x00\x01")
    ingest_source(store, f"dir:{d}")
    ps = {p.id: p for p in passages(store, "pages")}
    assert set(ps) == {"pages:a.html:0", "pages:sub/b.md:0", "pages:c.txt:0"}
    assert ps["pages:a.html:0"].title == "Page A" and ps["pages:a.html:0"].text == "Hello & welcome bye"
    assert ps["pages:sub/b.md:0"].title == "Bee" and ps["pages:c.txt:0"].title == "c"
    (d / "bad.txt").write_bytes(b"line one\nline \xff two\n")
    with pytest.raises(IngestError, match=r"bad\.txt:2"):
        ingest_source(store, f"dir:{d}")
    assert len(passages(store, "pages")) == 3
    assert strip_html("<p>a<br>b</p>")[1] == "a\nb"


def test_wordnet_source(store, tmp_path):
    """One passage per synset from WordNet's data files (a few synsets of each, for speed)."""
    wn = Path("/usr/share/wordnet")
    if not (wn / "data.noun").exists():
        pytest.skip("WordNet not installed")
    small = tmp_path / "wn"
    small.mkdir()
    for name in ("data.noun", "data.verb", "data.adj", "data.adv"):
        lines = (wn / name).read_text().splitlines(keepends=True)
        header = [ln for ln in lines if ln.startswith("  ")]
        body = [ln for ln in lines if not ln.startswith("  ")]
        (small / name).write_text("".join(header + body[:20]))
    ingest_source(store, f"wordnet:{small}")
    ps = passages(store, "wordnet-synsets")
    assert len(ps) == 80
    ent = next(p for p in ps if p.metadata["synset"] == "n.00001740")
    assert ent.title == "entity" and ent.text.startswith("entity: that which is perceived")
    assert ent.id == "wordnet-synsets:n.00001740:0"
    assert all(":" in p.text and p.title == p.metadata["lemmas"][0] for p in ps)


def test_bad_specs(store, tmp_path):
    with pytest.raises(KiraError, match="KIND:PATH"):
        ingest_source(store, "xml:/tmp/x")
    with pytest.raises(IngestError, match="no such file"):
        ingest_source(store, f"jsonl:{tmp_path}/missing.jsonl")
    store.register_source("kb1", "wordnet")
    f = tmp_path / "kb1.jsonl"
    f.write_text('{"text": "x"}\n')
    with pytest.raises(KiraError, match="taken"):
        ingest_source(store, f"jsonl:{f}")
