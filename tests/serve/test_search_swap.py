"""Against a real uvicorn server over a real tiny index: search, hot swap under load, the watcher."""

from __future__ import annotations

import asyncio
import time

import httpx

from kira.config import load_config
from kira.index_build import versions as V
from kira.serve.app import create_app
from kira.serve.server import ServerThread

ADMIN = {"Authorization": "Bearer adm"}


def _server(ws, **serve):
    cfg = load_config(ws)
    cfg.serve.admin_token = "adm"
    for k, v in serve.items():
        setattr(cfg.serve, k, v)
    return ServerThread(create_app(cfg))


def test_search_returns_evidence_with_provenance(served_ws):
    with _server(served_ws) as srv:
        ready = srv.wait_ready()
        assert ready["index_version"] == V.current_name(served_ws / "indexes")
        for method in ("bm25", "dense", "hybrid"):
            r = httpx.post(srv.url + "/v1/search", json={"query": "capital of Germany", "k": 3, "method": method})
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["index_version"] == ready["index_version"] and 1 <= len(body["hits"]) <= 3
            assert body["schema_version"] == 1
            assert all(h["id"].startswith("tiny:") and h["source"] == "tiny" for h in body["hits"])
        bm25 = httpx.post(srv.url + "/v1/search", json={"query": "Danube river Vienna", "k": 1, "method": "bm25"})
        assert bm25.json()["hits"][0]["title"] == "Danube"
        metrics = httpx.get(srv.url + "/metrics").text
        assert f'kira_index_version{{version="{ready["index_version"]}"}} 1.0' in metrics
        assert 'kira_stage_seconds_count{stage="search"}' in metrics


def test_hot_swap_under_concurrent_load_has_zero_failures(served_ws):
    """Reindex (a real rebuild in the job worker) while 8 clients ask and search: every request
    succeeds, answers come from the old version before the swap and the new one after, and
    concurrent questions were micro-batched."""
    with _server(served_ws, max_wait_ms=2) as srv:
        old = srv.wait_ready()["index_version"]
        results: list[tuple[int, str | None]] = []
        batch_sizes: list[int] = []
        stop = asyncio.Event()

        async def client(i: int, c: httpx.AsyncClient):
            while not stop.is_set():
                if i % 2:
                    r = await c.post("/v1/search", json={"query": f"capital city {i}", "k": 2, "method": "hybrid"})
                else:
                    r = await c.post("/v1/ask", json={"question": f"Which city is the capital of Germany? ({i})",
                                                      "k": 2, "sources": "text"})
                    if r.status_code == 200:
                        batch_sizes.append(r.json()["batch_size"])
                results.append((r.status_code, r.json().get("index_version") if r.status_code == 200 else r.text))

        async def main():
            async with httpx.AsyncClient(base_url=srv.url, timeout=60) as c:
                tasks = [asyncio.create_task(client(i, c)) for i in range(8)]
                await asyncio.sleep(0.3)
                job = (await c.post("/v1/admin/reindex", headers=ADMIN)).json()
                deadline = time.time() + 120
                while time.time() < deadline:
                    state = (await c.get(f"/v1/admin/jobs/{job['id']}", headers=ADMIN)).json()
                    if state["state"] in ("succeeded", "failed"):
                        break
                    await asyncio.sleep(0.1)
                await asyncio.sleep(0.5)  # keep the load on after the swap
                stop.set()
                await asyncio.gather(*tasks)
                return state

        state = asyncio.run(main())
        assert state["state"] == "succeeded", state
        new = state["result"]["index_version"]
        assert new != old and V.current_name(served_ws / "indexes") == new
        failures = [r for r in results if r[0] != 200]
        assert not failures, failures[:5]
        versions = [v for _, v in results]
        assert old in versions and new in versions and len(results) >= 20
        assert batch_sizes and max(batch_sizes) > 1  # concurrent questions shared a forward pass
        first_new = versions.index(new)
        assert all(v == new for v in versions[first_new + 8:])  # after the swap, no request lands on old
        assert httpx.get(srv.url + "/readyz").json()["index_version"] == new


def test_watcher_swaps_to_a_version_published_elsewhere(served_ws):
    from kira.index_build.build import build_index
    from kira.kb.store import DuckDBStore

    cfg = load_config(served_ws)
    with _server(served_ws) as srv:
        first = srv.wait_ready()["index_version"]
        # another process (here: this thread) builds and publishes; the server is not told
        store = DuckDBStore(cfg.store_path)
        try:
            v2 = build_index(cfg, store, progress=False)
        finally:
            store.close()
        deadline = time.time() + 30
        while time.time() < deadline and httpx.get(srv.url + "/readyz").json()["index_version"] != v2.name:
            time.sleep(0.1)
        assert httpx.get(srv.url + "/readyz").json()["index_version"] == v2.name != first
        # and back: publishing the older version again is picked up too
        V.publish(cfg.indexes_dir, V.IndexVersion.open(cfg.indexes_dir / first))
        deadline = time.time() + 30
        while time.time() < deadline and httpx.get(srv.url + "/readyz").json()["index_version"] != first:
            time.sleep(0.1)
        assert httpx.get(srv.url + "/readyz").json()["index_version"] == first
