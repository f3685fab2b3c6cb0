"""``kira index …`` end to end through Typer: build from a source, list, verify, add changes,
delete, compact, gc; ``--json`` prints exactly one JSON object."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from kira.index_build.cli import app

runner = CliRunner()


def run(*args: str) -> dict:
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, (res.output, res.exception)
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_cli_lifecycle(tmp_path):
    ws = tmp_path / "ws"
    docs = tmp_path / "docs.jsonl"
    docs.write_text("".join(json.dumps({"id": f"d{i}", "title": f"Title {i}", "text": t}) + "\n" for i, t in enumerate(
        ["the quick brown fox", "a lazy dog sleeps", "penguins cannot fly", "rivers flow to the sea"])))
    out = run("build", "--index", str(ws), "--source", f"jsonl:{docs}", "--encoder", "tiny-bert")
    assert out["version"] == "v0001" and out["passages"] == 4 and out["sources"] == ["docs"]
    assert out["faiss"] == "flat" and out["verify"]["dense_probes"] == 3

    listed = run("list", "--index", str(ws))
    assert listed["current"] == "v0001" and [v["version"] for v in listed["versions"]] == ["v0001"]
    assert run("verify", "--index", str(ws))["ok"] is True

    # change one row, drop one, add one: only the difference is applied
    docs.write_text("".join(json.dumps({"id": f"d{i}", "title": f"Title {i}", "text": t}) + "\n" for i, t in [
        (0, "the quick brown fox"), (1, "a lazy cat sleeps"), (2, "penguins cannot fly"), (4, "mountains are high")]))
    out = run("add", "--index", str(ws), "--source", f"jsonl:{docs}")
    assert (out["added"], out["deleted"]) == (2, 1) and out["passages"] == 4
    assert out["version"] == "v0002"  # deletes and adds in one staged version
    assert run("verify", "--index", str(ws))["docids"] == 4

    out = run("delete", "--index", str(ws), "--id", "docs:d2:0")
    assert out["passages"] == 3 and out["deleted"] == 1
    res = runner.invoke(app, ["delete", "--index", str(ws), "--id", "docs:nope:0"])
    assert res.exit_code == 2 and "not in the index" in res.output
    assert run("verify", "--index", str(ws))["docids"] == 3  # store and index still agree

    out = run("compact", "--index", str(ws))
    assert out["passages"] == 3 and out["op"] == "compact"
    out = run("gc", "--index", str(ws), "--keep", "1")
    assert out["removed_versions"] and run("list", "--index", str(ws))["versions"][0]["current"]

    res = runner.invoke(app, ["build", "--index", str(ws), "--source", f"jsonl:{tmp_path}/missing.jsonl"])
    assert res.exit_code == 2 and "missing.jsonl" in res.output
