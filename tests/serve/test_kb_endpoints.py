"""KB read endpoints: entity lookup and link prediction with a real (tiny) TransE artifact."""

from __future__ import annotations

from fastapi.testclient import TestClient

from kira.config import load_config
from kira.kb.embeddings import KGEmbedder
from kira.kb.plugin import add_kb
from kira.kb.store import DuckDBStore
from kira.serve.app import create_app

TRIPLES = ("Danube\tflows_through\tVienna\nDanube\tflows_through\tBudapest\nRhine\tflows_through\tBasel\n"
           "Vienna\tcapital_of\tAustria\nBudapest\tcapital_of\tHungary\n")


def test_entities_and_link_prediction(workspace):
    cfg = load_config(workspace)
    (workspace / "geo.tsv").write_text(TRIPLES)
    store = DuckDBStore(cfg.store_path)
    try:
        add_kb(store, "geo", "tsv", [str(workspace / "geo.tsv")], verbalize=False)
        emb = KGEmbedder("transe", dim=16, epochs=30, batch_size=8, device="cpu")
        emb.fit(list(store.iter_triples("geo")))
        emb.save(cfg.models_dir / "geo-transe")
    finally:
        store.close()
    with TestClient(create_app(cfg, watch=False)) as c:
        ents = c.get("/v1/kb/entities", params={"q": "Vienna"}).json()
        assert ents["entities"][0]["id"] == "Vienna" and ents["entities"][0]["kb"] == "geo"
        assert c.get("/v1/kb/entities", params={"q": "Vie"}).json()["entities"][0]["id"] == "Vienna"  # prefix
        assert c.get("/v1/kb/entities", params={"q": "\x01"}).status_code == 422
        assert c.get("/v1/kb/entities", params={"q": ""}).status_code == 422

        r = c.post("/v1/kb/link-predict", json={"kb": "geo", "head": "Danube", "relation": "flows_through", "k": 3})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["model"] == "geo-transe" and len(body["tails"]) == 3
        scores = [t["score"] for t in body["tails"]]
        assert scores == sorted(scores, reverse=True)
        assert body["tails"] == [{"id": t, "name": t, "score": s} for t, s in emb.rank_tails("Danube", "flows_through", 3)]

        assert c.post("/v1/kb/link-predict", json={"kb": "geo", "head": "Nile", "relation": "flows_through"}).status_code == 404
        assert c.post("/v1/kb/link-predict", json={"kb": "geo", "head": "Danube", "relation": "sings"}).status_code == 404
        r = c.post("/v1/kb/link-predict", json={"kb": "other", "head": "Danube", "relation": "flows_through"})
        assert r.status_code == 404 and "kb embed" in r.json()["detail"]
