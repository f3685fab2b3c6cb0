import pytest

from kira.errors import IngestError
from kira.jsonl import iter_jsonl, write_jsonl


def test_reads_objects_with_line_numbers(tmp_path):
    p = tmp_path / "q.jsonl"
    p.write_text('{"a": 1}\n\n{"a": 2}\n')
    assert list(iter_jsonl(p)) == [(1, {"a": 1}), (3, {"a": 2})]


@pytest.mark.parametrize(("content", "line", "msg"), [
    (b'{"a": 1}\n{"a": \n', 2, "invalid JSON"),
    (b'{"a": 1}\n[1, 2]\n', 2, "expected a JSON object"),
    (b'{"a": 1}\n{"a": "\xff"}\n', 2, "not valid UTF-8"),
])
def test_errors_name_file_and_line(tmp_path, content, line, msg):
    p = tmp_path / "bad.jsonl"
    p.write_bytes(content)
    with pytest.raises(IngestError, match=msg) as e:
        list(iter_jsonl(p))
    assert e.value.line == line and e.value.path == str(p)


def test_missing_file(tmp_path):
    with pytest.raises(IngestError, match="file not found"):
        list(iter_jsonl(tmp_path / "nope.jsonl"))


def test_write_then_read_round_trips_unicode(tmp_path):
    rows = [{"q": "Où est Agra?", "n": 1}, {"q": "x", "nested": {"a": [1, 2]}}]
    out = tmp_path / "sub" / "rows.jsonl"
    assert write_jsonl(out, rows) == 2
    assert [obj for _, obj in iter_jsonl(out)] == rows
    assert not list(tmp_path.glob("sub/.*.tmp"))
