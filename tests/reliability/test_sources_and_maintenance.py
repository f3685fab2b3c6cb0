"""Names, incremental maintenance and all-or-nothing multi-input commands, through real processes."""

from __future__ import annotations

import json


def test_kb_or_table_never_takes_a_text_sources_name(ws, tmp_path, probe):
    before = probe.counts(ws)
    assert before["docs"] == 12
    geo = ws.parent / "kbs" / "geo.tsv"
    r = probe.kira(ws, "kb", "add", "docs", str(geo))
    probe.clean(r, "'docs' is taken by a text source (12 passages", "kira index remove --source docs")
    csv = tmp_path / "t.csv"
    csv.write_text("name,value\nx,1\n")
    r = probe.kira(ws, "tables", "add", str(csv), "--name", "docs")
    probe.clean(r, "taken by a text source")
    r = probe.kira(ws, "kb", "remove", "docs")
    probe.clean(r, "is a text source", "not a knowledge base")
    r = probe.kira(ws, "index", "remove", "--source", "geo")
    probe.clean(r, "is a knowledge base", "kira kb remove geo")
    assert probe.counts(ws) == before


def test_same_kind_other_input_needs_replace(ws, tmp_path, probe):
    other = tmp_path / "other.jsonl"
    other.write_text(json.dumps({"id": "o", "text": "another file entirely"}) + "\n")
    r = probe.kira(ws, "index", "build", "--source", f"jsonl:{other}", "--name", "docs")
    probe.clean(r, "already a text source", "--replace")
    assert probe.counts(ws)["docs"] == 12
    r = probe.kira(ws, "index", "build", "--source", f"jsonl:{other}", "--name", "docs", "--replace", "--json")
    assert r.rc == 0, r.err
    assert probe.counts(ws)["docs"] == 1


def test_incremental_add_and_delete_in_fresh_processes(ws, tmp_path, probe):
    """`index remove --id`, `--source` and `index add` used to die with NoClassDefFoundError."""
    r = probe.kira(ws, "index", "remove", "--id", "docs:d0:0", "--json")
    assert r.rc == 0, r.err
    assert json.loads(r.out)["deleted"] == 1
    changed = tmp_path / "changed" / "docs.jsonl"
    changed.parent.mkdir()
    lines = (ws.parent / "docs.jsonl").read_text().splitlines()
    changed.write_text("\n".join([lines[1].replace("river", "changed river"), *lines[2:5]]) + "\n")
    r = probe.kira(ws, "index", "add", "--source", f"jsonl:{changed}", "--name", "docs", "--replace", "--json")
    assert r.rc == 0, r.err
    out = json.loads(r.out)
    assert out["added"] == 4 and out["deleted"] == 7, out  # d1..d4 re-read from a new path; d5..d11 gone
    r = probe.kira(ws, "index", "verify", "--json")
    assert r.rc == 0 and json.loads(r.out)["ok"], r.err
    r = probe.kira(ws, "index", "remove", "--source", "docs", "--json")
    assert r.rc == 0, r.err
    assert "docs" not in probe.counts(ws)
    assert probe.kira(ws, "index", "verify", "--json").rc == 0


def test_multi_source_build_is_all_or_nothing(ws, tmp_path, probe):
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps({"id": 1, "text": "fine"}) + "\n")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"id": 1, "text": "fine"}) + "\n{broken\n")
    before = probe.counts(ws)
    r = probe.kira(ws, "index", "build", "--source", f"jsonl:{good}", "--source", f"jsonl:{bad}")
    probe.clean(r, "bad.jsonl:2")
    assert probe.counts(ws) == before
    assert probe.kira(ws, "index", "verify", "--json").rc == 0


def test_multi_file_tables_add_is_all_or_nothing(ws, tmp_path, probe):
    good = tmp_path / "good.csv"
    good.write_text("name,value\na,1\nb,2\n")
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("name,value\na,1\nb,2,3\n")
    r = probe.kira(ws, "tables", "add", str(good), str(ragged))
    probe.clean(r, "ragged.csv:3")
    r = probe.kira(ws, "tables", "list", "--json")
    assert r.rc == 0 and json.loads(r.out) == [], r.out


def test_csv_unterminated_quote_and_bom(ws, tmp_path, probe):
    uq = tmp_path / "uq.csv"
    uq.write_text('id,text\n1,"hello\n2,world\n3,again\n')
    r = probe.kira(ws, "index", "build", "--source", f"csv:{uq}", "--name", "uq")
    probe.clean(r, "uq.csv:2", "unterminated quoted field")
    bom = tmp_path / "bom.csv"
    bom.write_bytes("\ufeffid,text\nx1,first row\n".encode())
    bomj = tmp_path / "bomj.jsonl"
    bomj.write_bytes("\ufeff".encode() + json.dumps({"id": "j1", "text": "json with a BOM"}).encode() + b"\n")
    r = probe.kira(ws, "index", "build", "--source", f"csv:{bom}", "--source", f"jsonl:{bomj}", "--json")
    assert r.rc == 0, r.err
    import duckdb

    con = duckdb.connect(str(ws / "store.duckdb"), read_only=True)
    ids = {r[0] for r in con.execute("SELECT id FROM passages WHERE source IN ('bom', 'bomj')").fetchall()}
    con.close()
    assert ids == {"bom:x1:0", "bomj:j1:0"}


def test_oversized_document_is_a_line_numbered_error(ws, tmp_path, probe):
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"id": "ok", "text": "small"}) + "\n"
                   + json.dumps({"id": "huge", "text": "x" * 200_000}) + "\n")
    before = probe.counts(ws)
    r = probe.kira(ws, "index", "build", "--source", f"jsonl:{big}")
    probe.clean(r, "big.jsonl:2", "ingest.max_chars")
    assert probe.counts(ws) == before
