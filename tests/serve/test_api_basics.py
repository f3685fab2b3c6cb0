"""API behaviour that needs no index: auth, limits, bad input, health, metrics, the page, jobs."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from fastapi.testclient import TestClient

from kira.config import load_config
from kira.serve.app import create_app
from kira.serve.batching import MicroBatcher
from kira.serve.jobs import JobManager
from kira.serve.security import clean_text, secrets_match
from kira.serve.service import confine_path


@pytest.fixture
def client(workspace):
    cfg = load_config(workspace)
    cfg.serve.admin_token = "s3cret-admin"
    cfg.serve.max_body_bytes = 4096
    cfg.serve.max_upload_bytes = 8192
    cfg.serve.allowed_kb_dirs = [str(workspace / "kbs")]
    with TestClient(create_app(cfg, watch=False)) as c:
        yield c


ADMIN = {"Authorization": "Bearer s3cret-admin"}


def test_health_ready_and_openapi(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["ready"] is False
    spec = client.get("/openapi.json").json()
    for path in ("/v1/ask", "/v1/search", "/v1/kb/entities", "/v1/kb/link-predict",
                 "/v1/admin/knowledge-bases", "/v1/admin/reindex", "/v1/admin/jobs/{job_id}",
                 "/v1/admin/knowledge-bases/{name}", "/healthz", "/readyz", "/metrics"):
        assert path in spec["paths"], path
    ask = spec["components"]["schemas"]["AskRequest"]["properties"]
    assert ask["question"]["maxLength"] == 1000 and ask["k"]["maximum"] == 200
    assert client.get("/docs").status_code == 200


def test_ask_without_index_is_503_not_500(client):
    r = client.post("/v1/ask", json={"question": "What is the capital of France?"})
    assert r.status_code == 503 and "not ready" in r.json()["detail"]


@pytest.mark.parametrize("body, status, needle", [
    (b"{not json", 400, "malformed JSON"),
    (b'{"question": 5}', 422, "question"),
    (b'{"question": ""}', 422, "question"),
    (b'{"question": "   "}', 422, "must not be empty"),
    (b'{"question": "abc\\u0000def"}', 422, "control character"),
    (b'{"question": "abc\\u0007"}', 422, "control character"),
    (b'{"question": "\\ud800x"}', 422, "unicode"),
    (b'{"question": "ok?", "k": 0}', 422, "k"),
    (b'{"question": "ok?", "k": 100000}', 422, "k"),
    (b'{"question": "ok?", "k": "5"}', 422, "k"),
    (b'{"question": "ok?", "sources": "web"}', 422, "sources"),
    (b'{"question": "ok?", "reader": "gpt"}', 422, "reader"),
    (b'{"question": "ok?", "extra": 1}', 422, "extra"),
    (b'[]', 422, ""),
    (b'{"question": "' + b"x" * 1001 + b'"}', 422, "question"),
])
def test_bad_input_is_4xx_with_a_message(client, body, status, needle):
    r = client.post("/v1/ask", content=body, headers={"Content-Type": "application/json"})
    assert r.status_code == status, r.text
    assert needle in r.text


def test_body_size_limit(client):
    big = b'{"question": "' + b"x" * 5000 + b'"}'
    r = client.post("/v1/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "larger than 4096" in r.json()["detail"]

    def chunks():  # no Content-Length: counted while streaming
        yield b'{"question": "'
        for _ in range(10):
            yield b"y" * 1000
        yield b'"}'

    r = client.post("/v1/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    metrics = client.get("/metrics").text  # refusals before routing are counted under their route
    assert 'kira_http_requests_total{method="POST",route="/v1/ask",status="413"} 2.0' in metrics, metrics


def test_api_key_optional_and_constant_time(workspace):
    cfg = load_config(workspace)
    cfg.serve.api_key = "k3y"
    with TestClient(create_app(cfg, watch=False)) as c:
        assert c.post("/v1/ask", json={"question": "q?"}).status_code == 401
        assert c.post("/v1/ask", json={"question": "q?"}, headers={"X-API-Key": "nope"}).status_code == 401
        assert c.post("/v1/ask", json={"question": "q?"}, headers={"X-API-Key": "k3y"}).status_code == 503
        assert c.get("/healthz").status_code == 200  # health stays open
    assert secrets_match("abc", "abc") and not secrets_match("abd", "abc") and not secrets_match(None, "abc")


def test_api_key_and_admin_token_from_environment(workspace, monkeypatch):
    monkeypatch.setenv("KIRA_API_KEY", "env-key")
    monkeypatch.setenv("KIRA_ADMIN_TOKEN", "env-admin")
    with TestClient(create_app(load_config(workspace), watch=False)) as c:
        assert c.post("/v1/search", json={"query": "x"}).status_code == 401
        assert c.post("/v1/search", json={"query": "x"}, headers={"X-API-Key": "env-key"}).status_code == 503
        assert c.post("/v1/admin/reindex").status_code == 401
        assert c.get("/v1/admin/jobs", headers={"Authorization": "Bearer env-admin"}).status_code == 200


def test_admin_requires_token(client, workspace):
    assert client.post("/v1/admin/reindex").status_code == 401
    assert client.post("/v1/admin/reindex", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/v1/admin/jobs/job-1", headers=ADMIN).status_code == 404
    cfg = load_config(workspace)  # no admin token configured: admin API is off
    with TestClient(create_app(cfg, watch=False)) as c:
        r = c.post("/v1/admin/reindex", headers=ADMIN)
        assert r.status_code == 403 and "disabled" in r.json()["detail"]


def test_server_side_kb_paths_are_confined(client, workspace, tmp_path):
    kbs = workspace / "kbs"
    kbs.mkdir()
    (kbs / "ok.tsv").write_text("a\tr\tb\n")
    outside = tmp_path / "secret.tsv"
    outside.write_text("x\ty\tz\n")
    (kbs / "link.tsv").symlink_to(outside)

    def post(path):
        return client.post("/v1/admin/knowledge-bases", headers=ADMIN,
                           json={"name": "toy", "type": "tsv", "paths": [path]})

    for bad in (str(outside), str(kbs / ".." / ".." / "secret.tsv"), str(kbs / "link.tsv"), "/etc/passwd"):
        r = post(bad)
        assert r.status_code == 403 and "outside the allowed" in r.json()["detail"], bad
    assert post(str(kbs / "missing.tsv")).status_code == 404
    r = client.post("/v1/admin/knowledge-bases", headers=ADMIN,
                    json={"name": "../evil", "type": "tsv", "paths": [str(kbs / "ok.tsv")]})
    assert r.status_code == 422
    with pytest.raises(PermissionError):
        confine_path(str(kbs / "ok.tsv"), [])
    assert confine_path(str(kbs / "ok.tsv"), [str(kbs)]) == (kbs / "ok.tsv").resolve()


def test_upload_size_limit(client):
    files = {"files": ("big.tsv", b"a\tr\tb\n" * 3000, "text/tab-separated-values")}
    r = client.post("/v1/admin/knowledge-bases", headers=ADMIN, data={"name": "big", "type": "tsv"}, files=files)
    assert r.status_code == 413
    r = client.post("/v1/admin/knowledge-bases", headers=ADMIN, data={"name": "x", "type": "nope"},
                    files={"files": ("a.tsv", b"a\tr\tb\n")})
    assert r.status_code == 422 and "type" in r.json()["detail"]
    r = client.post("/v1/admin/knowledge-bases", headers={**ADMIN, "Content-Type": "text/plain"}, content=b"x")
    assert r.status_code == 415


def test_cors_off_by_default_and_configurable(client, workspace):
    r = client.options("/v1/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in r.headers
    cfg = load_config(workspace)
    cfg.serve.cors_origins = ["https://app.example"]
    with TestClient(create_app(cfg, watch=False)) as c:
        r = c.options("/v1/ask", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        assert r.headers.get("access-control-allow-origin") == "https://app.example"
        r = c.options("/v1/ask", headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers


def test_metrics_and_page(client):
    client.get("/healthz")
    client.post("/v1/ask", content=b"{", headers={"Content-Type": "application/json"})
    text = client.get("/metrics").text
    assert 'kira_http_requests_total{method="GET",route="/healthz",status="200"}' in text
    assert 'route="/v1/ask",status="400"' in text
    assert "kira_http_request_seconds_bucket" in text
    page = client.get("/")
    assert page.status_code == 200 and 'id="question"' in page.text
    assert "highlighted" in client.get("/static/app.js").text


def test_clean_text():
    assert clean_text("  hi\tthere \n", "q", 20) == "hi\tthere"
    for bad in ("", "  ", "a\x00", "a\x1b[31m", "x" * 21):
        with pytest.raises(ValueError):
            clean_text(bad, "q", 20)


def test_microbatcher_batches_concurrent_items():
    calls: list[list[int]] = []

    def square_all(key, xs):
        calls.append(list(xs))
        time.sleep(0.01)
        return [key * x * x for x in xs]

    async def main():
        b = MicroBatcher(square_all, max_batch=8, max_wait_ms=20)
        await b.start()
        outs = await asyncio.gather(*[b.submit(1, i) for i in range(20)], b.submit(-1, 3))
        await b.stop()
        return outs

    outs = asyncio.run(main())
    assert [o[0] for o in outs[:20]] == [i * i for i in range(20)] and outs[20][0] == -9
    assert max(len(c) for c in calls) == 8  # batches really formed, never above max_batch
    assert sum(len(c) for c in calls) == 21 and len(calls) < 21


def test_microbatcher_collects_while_questions_keep_arriving():
    """Questions 20 ms apart with a 50 ms quiet gap form one batch, though they span 140 ms (a fixed
    window after the first question would have split them); a lone question is a batch of one."""
    calls: list[list[int]] = []

    def ident(key, xs):
        calls.append(list(xs))
        return list(xs)

    async def main():
        b = MicroBatcher(ident, max_batch=16, max_wait_ms=50)
        await b.start()

        async def later(i):
            await asyncio.sleep(0.02 * i)
            return await b.submit(0, i)

        outs = await asyncio.gather(*[later(i) for i in range(8)])
        await b.submit(0, 99)
        await b.stop()
        return outs

    outs = asyncio.run(main())
    assert [o[0] for o in outs] == list(range(8))
    assert calls == [list(range(8)), [99]]


def test_microbatcher_propagates_errors():
    def boom(key, xs):
        raise ValueError("bad batch")

    async def main():
        b = MicroBatcher(boom, max_batch=4, max_wait_ms=1)
        with pytest.raises(ValueError, match="bad batch"):
            await b.submit(0, 1)
        await b.stop()

    asyncio.run(main())


def test_job_manager_runs_one_at_a_time_and_reports_errors():
    jm = JobManager()
    running = []

    def body(job):
        running.append(job.id)
        assert len(running) == 1
        job.report(0.5, "halfway")
        time.sleep(0.05)
        running.remove(job.id)
        return {"ok": True}

    a = jm.submit("t", {}, body)
    b = jm.submit("t", {}, body)
    c = jm.submit("t", {}, lambda job: 1 / 0)
    assert jm.wait(a.id).state == "succeeded" and jm.wait(b.id).result == {"ok": True}
    failed = jm.wait(c.id)
    assert failed.state == "failed" and "ZeroDivisionError" in failed.error and failed.progress < 1
    jm.stop()


def test_python_m_entry_point_exists():
    from pathlib import Path

    import kira.serve

    assert (Path(kira.serve.__file__).parent / "__main__.py").exists()
    assert os.path.exists(Path(kira.serve.__file__).parent / "static" / "index.html")


def test_cli_prints_the_openapi_spec(workspace):
    import json

    from typer.testing import CliRunner

    from kira.cli import app

    res = CliRunner().invoke(app, ["serve", "openapi", "--workspace", str(workspace)])
    assert res.exit_code == 0, res.output
    spec = json.loads(res.output)
    assert spec["info"]["title"] == "kira" and "/v1/ask" in spec["paths"]
    res = CliRunner().invoke(app, ["serve", "run", "--help"])
    assert res.exit_code == 0 and "--workspace" in res.output and "--max-batch" in res.output


def test_snapshot_holder_swaps_atomically_and_survives_a_bad_version():
    from types import SimpleNamespace

    from kira.serve.snapshot import SnapshotHolder

    on_disk = {"v": None}
    loads: list[str] = []

    def loader():
        name = on_disk["v"]
        if name == "v0003":
            raise RuntimeError("corrupt FAISS file")
        loads.append(name)
        return SimpleNamespace(version=name)

    swaps = []
    holder = SnapshotHolder(loader, lambda: on_disk["v"], on_swap=lambda old, new: swaps.append(
        (old.version if old else None, new.version)))
    assert holder.reload() is None and holder.current is None and "no index" in holder.last_error
    on_disk["v"] = "v0001"
    in_flight = holder.reload()
    assert in_flight.version == "v0001" and holder.reload() is in_flight and loads == ["v0001"]  # no reload
    on_disk["v"] = "v0002"
    new = holder.reload()
    assert holder.current is new and new.version == "v0002"
    assert in_flight.version == "v0001" and in_flight.engine.version == "v0001"  # untouched by the swap
    on_disk["v"] = "v0003"
    assert holder.reload() is new and "corrupt FAISS" in holder.last_error  # keeps serving v0002
    assert swaps == [(None, "v0001"), ("v0001", "v0002")] and holder.swaps == 2


def test_kb_types_come_from_the_source_registry(workspace):
    """A KB source registered as a plug-in (``kira.sources``) is accepted by the HTTP API too."""
    from kira.kb import registry
    from kira.kb.sources import TriplesFileSource

    registry.register_source("my-triples", TriplesFileSource)
    try:
        cfg = load_config(workspace)
        app = create_app(cfg, watch=False)
        schema = app.openapi()["paths"]["/v1/admin/knowledge-bases"]["post"]["requestBody"]["content"]
        assert "my-triples" in schema["multipart/form-data"]["schema"]["properties"]["type"]["enum"]
    finally:
        registry.unregister_source("my-triples")
