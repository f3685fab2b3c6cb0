"""The server and the CLI share a workspace; two writers take turns; readers never fail.

The "other writer" in some probes is this test process itself holding what a writer holds (the
workspace lock and DuckDB's read-write connection), so the timing is exact rather than a race
between process start-ups; the commands under test always run as separate processes.
"""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.request

import duckdb

from kira.workspace import workspace_lock


def _post(port: int, path: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=60) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def test_a_second_writer_waits_then_runs_or_says_who_holds_it(ws, tmp_path, probe):
    csv = tmp_path / "cities.csv"
    csv.write_text("city,country\nVienna,Austria\nBudapest,Hungary\n")
    with workspace_lock(ws), duckdb.connect(str(ws / "store.duckdb")):
        r = probe.kira(ws, "tables", "add", str(csv), KIRA_LOCK_WAIT="1")
        probe.clean(r, f"pid {os.getpid()}", "writer", "try again when it finishes")
        waiting = probe.start(ws, "tables", "add", str(csv), "--json", KIRA_LOCK_WAIT="120")
        time.sleep(6)  # long enough for the command to start and meet the lock
        assert waiting.poll() is None, waiting.communicate()
    out, err = waiting.communicate(timeout=120)
    assert waiting.returncode == 0, err
    assert json.loads(out)[0]["name"] == "cities"
    said = [ln for ln in err.splitlines() if ln.startswith("kira:")]
    assert len(said) == 1 and "waiting up to 120 s" in said[0] and f"pid {os.getpid()}" in said[0], err


def test_readers_and_kira_ask_work_while_a_writer_holds_the_store(ws, probe):
    with workspace_lock(ws), duckdb.connect(str(ws / "store.duckdb")):
        r = probe.kira(ws, "kb", "list", "--json")
        assert r.rc == 0, r.err
        assert [k["name"] for k in json.loads(r.out)] == ["geo"]
        said = [ln for ln in r.err.splitlines() if ln.startswith("kira:")]
        assert len(said) == 1 and "reading the store as of the current index version" in said[0], r.err
        r = probe.kira(ws, "index", "verify", "--json")
        assert r.rc == 0 and json.loads(r.out)["ok"], r.err
        r = probe.kira(ws, "ask", "What does the Danube flow through?", "--json")
        assert r.rc == 0, r.err
        assert "unavailable" not in r.err, r.err
        kinds = {e["kind"] for e in json.loads(r.out)["evidence"]}
        assert "kb_fact" in kinds, r.out


def test_cli_writers_run_while_the_server_serves(ws, probe):
    port = probe.free_port()
    server = probe.start(ws, "serve", "run", "--port", str(port))
    try:
        probe.wait_ready(port, server)
        status, body = _post(port, "/v1/ask", {"question": "What does the Danube flow through?", "k": 4,
                                               "sources": "all", "reader": "extractive"})
        assert status == 200, body
        first = body["index_version"]
        assert any(e["kind"] == "kb_fact" for e in body["evidence"]), body
        failures: list = []
        done = threading.Event()

        def hammer() -> None:
            n = 0
            while not done.is_set() and n < 400:
                s, b = _post(port, "/v1/ask", {"question": "Which river flows through Vienna?", "k": 4,
                                               "sources": "all", "reader": "extractive"})
                n += 1
                if s != 200:
                    failures.append((s, b))

        t = threading.Thread(target=hammer)
        t.start()
        try:
            r = probe.kira(ws, "kb", "list", "--json")
            assert r.rc == 0 and [k["name"] for k in json.loads(r.out)] == ["geo"], r.err
            r = probe.kira(ws, "index", "build", "--full", "--json")  # a writer while the server reads
            assert r.rc == 0, r.err
            new = json.loads(r.out)["version"]
        finally:
            done.set()
            t.join(timeout=120)
        assert not failures, failures[:3]
        deadline = time.time() + 30
        while time.time() < deadline:
            status, body = _post(port, "/v1/ask", {"question": "What does the Danube flow through?", "k": 4,
                                                   "sources": "all", "reader": "extractive"})
            if body.get("index_version") == new:
                break
            time.sleep(0.3)
        assert status == 200 and body["index_version"] == new != first, body
        assert any(e["kind"] == "kb_fact" for e in body["evidence"]), body
    finally:
        server.terminate()
        server.wait(timeout=30)
