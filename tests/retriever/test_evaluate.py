"""Top-k answer accuracy: hand-computed on synthetic rankings and on the real tiny index."""

import json

import pytest

from kira.errors import IngestError, KiraError
from kira.retriever.evaluate import first_hit_rank, load_questions, parse_ks, top_k_accuracy
from kira.schema import Evidence

QUESTIONS = [
    {"question": "Which river flows through Vienna?", "answers": ["the Danube"], "id": "q1"},
    {"question": "Where was Mozart born?", "answers": ["Salzburg"]},
    {"question": "What is the largest planet?", "answers": ["Jupiter", "planet Jupiter"]},
    {"question": "Who wrote Hamlet?", "answers": ["Shakespeare"]},  # in no passage: never a hit
]


def _ev(text):
    return Evidence(id=text, title="", text=text, score=0.0)


def test_top_k_accuracy_hand_computed():
    results = [
        [_ev("Vienna lies on the Danube.")],                          # hit at 1
        [_ev("nothing"), _ev("also nothing"), _ev("born in Salzburg")],  # hit at 3
        [_ev("no"), _ev("no")],                                       # miss
        [_ev("x"), _ev("Shakespeare's plays")],                       # "shakespeares" ≠ "shakespeare": miss
    ]
    answers = [["danube"], ["Salzburg"], ["Jupiter"], ["Shakespeare"]]
    assert [first_hit_rank(r, a) for r, a in zip(results, answers, strict=True)] == [1, 3, None, None]
    assert top_k_accuracy(results, answers, [1, 2, 3]) == {"top1": 0.25, "top2": 0.25, "top3": 0.5}


def test_parse_ks():
    assert parse_ks("20,1,5,5") == [1, 5, 20]
    with pytest.raises(KiraError):
        parse_ks("0,5")


def test_load_questions_rejects_bad_rows_with_line_and_field(tmp_path):
    f = tmp_path / "q.jsonl"
    f.write_text(json.dumps(QUESTIONS[0]) + "\n\n" + json.dumps({"question": "q", "answers": "b"}) + "\n")
    rows = load_questions(f)
    assert rows[1]["answers"] == ["b"] and rows[0]["id"] == "q1"
    f.write_text(json.dumps(QUESTIONS[0]) + "\n" + json.dumps({"question": "q", "answers": [1]}) + "\n")
    with pytest.raises(IngestError) as e:
        load_questions(f)
    assert (e.value.line, e.value.field) == (2, "answers") and str(f) in str(e.value)
    f.write_text('{"question": "q", "answers": ["b"]}\n{oops\n')
    with pytest.raises(IngestError, match=r"q.jsonl:2"):
        load_questions(f)
    f.write_text('{"answers": ["b"]}\n')
    with pytest.raises(IngestError, match="question"):
        load_questions(f)


def test_eval_cli_json_on_tiny_index(tiny_index, tmp_path):
    from typer.testing import CliRunner

    from kira.retriever.cli import app

    _, version = tiny_index
    qf = tmp_path / "q.jsonl"
    qf.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    ws = version.path.parent.parent
    res = CliRunner().invoke(app, ["eval", "--index", str(ws), "--questions", str(qf), "--k", "1,5,100", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"n", "bm25", "dense", "hybrid"} and out["n"] == 4
    for m in ("bm25", "dense", "hybrid"):
        assert set(out[m]) == {"top1", "top5", "top100"}
        # 3 of 4 questions are answerable; k=5 and k=100 reach them in an 8-passage corpus
        assert out[m]["top5"] == out[m]["top100"] == 0.75
    assert out["bm25"]["top1"] == 0.75  # each answerable question's passage is BM25's top hit


def test_eval_cli_reports_bad_questions_file(tiny_index, tmp_path):
    from typer.testing import CliRunner

    from kira.retriever.cli import app

    _, version = tiny_index
    qf = tmp_path / "q.jsonl"
    qf.write_text('{"question": "x"}\n')
    res = CliRunner().invoke(app, ["eval", "--index", str(version.path), "--questions", str(qf)])
    assert res.exit_code == 2
    assert "q.jsonl:1" in res.output and "answers" in res.output


@pytest.mark.slow
def test_kira_eval_retrieval_prints_exactly_one_json_object(tiny_index, tmp_path):
    """The real `kira` entry point in a fresh process: JVM/model logs must not leak onto stdout."""
    import os
    import subprocess
    import sys

    _, version = tiny_index
    qf = tmp_path / "q.jsonl"
    qf.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "KIRA_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "kira.cli", "eval", "retrieval", "--index",
                           str(version.path.parent.parent), "--questions", str(qf), "--k", "1,100",
                           "--methods", "bm25", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout) == {"n": 4, "bm25": {"top1": 0.75, "top100": 0.75}}
