"""Admin jobs against the real server: plug a KB in (upload and server-side path), a bad KB fails
with file and line while serving goes on, removal; each publishes a new index version."""

from __future__ import annotations

import time

import httpx

from kira.config import load_config
from kira.serve.app import create_app
from kira.serve.server import ServerThread

ADMIN = {"Authorization": "Bearer adm"}
TRIPLES = "head\trelation\ttail\nDanube\tflows_through\tVienna\nDanube\tflows_through\tBudapest\nVienna\tcapital_of\tAustria\n"
ENTITIES = ("id\tname\tdescription\nVienna\tVienna\tcapital city of Austria\nAustria\tAustria\ta country in Europe\n"
            "Danube\tDanube\ta long river\nBudapest\tBudapest\tcapital city of Hungary\n")


def _wait(c: httpx.Client, job: dict, timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = c.get(f"/v1/admin/jobs/{job['id']}", headers=ADMIN).json()
        if state["state"] in ("succeeded", "failed"):
            return state
        assert 0 <= state["progress"] <= 1 and state["stage"]
        time.sleep(0.1)
    raise TimeoutError(job)


def test_plug_in_remove_and_bad_kb(served_ws):
    kbs = served_ws / "kbs"
    kbs.mkdir()
    (kbs / "rivers_triples.tsv").write_text("Rhine\tflows_through\tBasel\nRhine\tflows_into\tNorth_Sea\n")
    (kbs / "broken.tsv").write_text("Rhine\tflows_through\tBasel\nonly-two\tcolumns\n")
    cfg = load_config(served_ws)
    cfg.serve.admin_token = "adm"
    cfg.serve.allowed_kb_dirs = [str(kbs)]
    with ServerThread(create_app(cfg)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        v0 = srv.wait_ready()["index_version"]

        # 1. upload (multipart): validated, ingested, verbalized, indexed, swapped in
        r = c.post("/v1/admin/knowledge-bases", headers=ADMIN, data={"name": "geo", "type": "tsv"},
                   files=[("files", ("triples.tsv", TRIPLES.encode())), ("files", ("entities.tsv", ENTITIES.encode()))])
        assert r.status_code == 202, r.text
        done = _wait(c, r.json())
        assert done["state"] == "succeeded", done
        assert done["progress"] == 1.0 and done["result"]["report"]["n_triples"] == 3
        v1 = done["result"]["index_version"]
        assert v1 != v0 and c.get("/readyz").json()["index_version"] == v1
        ents = c.get("/v1/kb/entities", params={"q": "vienna"}).json()["entities"]
        assert any(e["kb"] == "geo" and e["id"] == "Vienna" for e in ents)
        hits = c.post("/v1/search", json={"query": "Danube flows through Budapest", "k": 5, "method": "bm25"}).json()
        assert hits["index_version"] == v1 and any(h["source"] == "geo" for h in hits["hits"])

        # 2. server-side path inside the allowed directory
        r = c.post("/v1/admin/knowledge-bases", headers=ADMIN,
                   json={"name": "rivers", "type": "tsv", "paths": [str(kbs / "rivers_triples.tsv")],
                         "embed": "transe"})
        done = _wait(c, r.json())
        assert done["state"] == "succeeded", done
        assert done["result"]["embedding"]["artifact"] == "rivers-transe"
        lp = c.post("/v1/kb/link-predict", json={"kb": "rivers", "head": "Rhine", "relation": "flows_through", "k": 2})
        assert lp.status_code == 200 and len(lp.json()["tails"]) == 2, lp.text
        v2 = done["result"]["index_version"]
        names = {k["name"] for k in c.get("/v1/admin/knowledge-bases", headers=ADMIN).json()["knowledge_bases"]}
        assert {"geo", "rivers"} <= names

        # 3. a malformed KB fails with file and line; the served version does not change
        r = c.post("/v1/admin/knowledge-bases", headers=ADMIN,
                   json={"name": "broken", "type": "tsv", "paths": [str(kbs / "broken.tsv")]})
        failed = _wait(c, r.json())
        assert failed["state"] == "failed" and "broken.tsv:2" in failed["error"], failed
        assert c.get("/readyz").json()["index_version"] == v2
        assert c.get("/v1/kb/entities", params={"q": "only-two"}).json()["entities"] == []
        r = c.post("/v1/admin/knowledge-bases", headers=ADMIN, data={"name": "bad", "type": "tsv"},
                   files={"files": ("triples.tsv", b"a\tb\n")})
        failed = _wait(c, r.json())
        assert failed["state"] == "failed" and "triples.tsv:1" in failed["error"], failed
        assert not [p for p in (served_ws / "uploads").iterdir() if p.name.startswith("bad-")]  # cleaned up

        # 4. removal publishes a version without the KB
        assert c.delete("/v1/admin/knowledge-bases/nope", headers=ADMIN).status_code == 404
        r = c.delete("/v1/admin/knowledge-bases/geo", headers=ADMIN)
        assert r.status_code == 202
        done = _wait(c, r.json())
        assert done["state"] == "succeeded", done
        assert c.get("/readyz").json()["index_version"] == done["result"]["index_version"] != v2
        assert not [e for e in c.get("/v1/kb/entities", params={"q": "vienna"}).json()["entities"] if e["kb"] == "geo"]
        hits = c.post("/v1/search", json={"query": "Danube flows through Budapest", "k": 8, "method": "bm25"}).json()
        assert not any(h["source"] == "geo" for h in hits["hits"])

        jobs = c.get("/v1/admin/jobs", headers=ADMIN).json()
        assert [j["kind"] for j in jobs] == ["add-kb", "add-kb", "add-kb", "add-kb", "remove-kb"]
        metrics = c.get("/metrics").text
        assert 'kira_jobs_total{kind="add-kb",state="failed"} 2.0' in metrics
        assert 'kira_jobs_total{kind="add-kb",state="succeeded"} 2.0' in metrics


def test_names_are_one_namespace_over_http(served_ws):
    """A KB may not take a text source's name, a KB of another file needs replace, and DELETE on the
    KB route never removes a text source (each refused with 409 before any job starts)."""
    kbs = served_ws / "kbs"
    kbs.mkdir()
    (kbs / "a.tsv").write_text("Rhine\tflows_through\tBasel\n")
    (kbs / "b.tsv").write_text("Rhine\tflows_into\tNorth_Sea\n")
    cfg = load_config(served_ws)
    cfg.serve.admin_token = "adm"
    cfg.serve.allowed_kb_dirs = [str(kbs)]
    with ServerThread(create_app(cfg)) as srv, httpx.Client(base_url=srv.url, timeout=60) as c:
        srv.wait_ready()
        r = c.post("/v1/admin/knowledge-bases", headers=ADMIN,
                   json={"name": "tiny", "type": "tsv", "paths": [str(kbs / "a.tsv")]})
        assert r.status_code == 409 and "taken by" in r.json()["detail"], r.text
        r = c.delete("/v1/admin/knowledge-bases/tiny", headers=ADMIN)
        assert r.status_code == 409 and "not a knowledge base" in r.json()["detail"], r.text
        r = c.post("/v1/admin/knowledge-bases", headers=ADMIN,
                   json={"name": "rivers", "type": "tsv", "paths": [str(kbs / "a.tsv")]})
        assert _wait(c, r.json())["state"] == "succeeded"
        r = c.post("/v1/admin/knowledge-bases", headers=ADMIN,
                   json={"name": "rivers", "type": "tsv", "paths": [str(kbs / "b.tsv")]})
        assert r.status_code == 409 and "replace" in r.json()["detail"], r.text
        r = c.post("/v1/admin/knowledge-bases", headers=ADMIN,
                   json={"name": "rivers", "type": "tsv", "paths": [str(kbs / "b.tsv")], "replace": True})
        done = _wait(c, r.json())
        assert done["state"] == "succeeded" and done["result"]["report"]["n_triples"] == 1, done
        hits = c.post("/v1/search", json={"query": "tiny Paris France", "k": 20, "method": "bm25"}).json()["hits"]
        assert any(h["source"] == "tiny" for h in hits)  # the text source is intact
