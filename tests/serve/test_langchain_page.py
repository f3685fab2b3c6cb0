"""LangChain (langchain-core only) and the web page in headless Chromium, against the real server."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import urllib.parse
from html.parser import HTMLParser

import pytest
from langchain_core.documents import Document
from langchain_core.runnables import RunnableLambda

from kira.config import load_config
from kira.serve.app import create_app
from kira.serve.langchain import KiraAsk, KiraRetriever
from kira.serve.server import ServerThread


@pytest.fixture
def server(served_ws):
    cfg = load_config(served_ws)
    cfg.serve.api_key = "lc-key"
    with ServerThread(create_app(cfg)) as srv:
        srv.wait_ready()
        yield srv


def test_retriever_over_http_and_in_process(server, served_ws):
    retr = KiraRetriever(base_url=server.url, k=2, method="bm25", api_key="lc-key")
    docs = retr.invoke("Which river flows through Vienna and Budapest?")
    assert docs and all(isinstance(d, Document) for d in docs) and len(docs) <= 2
    top = docs[0]
    assert top.metadata["title"] == "Danube" and top.metadata["source"] == "tiny"
    assert top.metadata["retriever"] == "bm25" and "Danube" in top.page_content and top.id.startswith("tiny:")
    adocs = asyncio.run(retr.ainvoke("highest mountain Himalayas"))
    assert adocs[0].metadata["title"] == "Mount Everest"
    with pytest.raises(Exception, match="401"):
        KiraRetriever(base_url=server.url, k=2).invoke("no key")

    from kira.index_build.versions import current_version
    from kira.retriever import open_retrievers

    local = KiraRetriever(retriever=open_retrievers(current_version(served_ws / "indexes"))["bm25"], k=1)
    assert local.invoke("planet largest Solar System")[0].metadata["title"] == "Jupiter"
    with pytest.raises(ValueError):
        KiraRetriever(k=1).invoke("neither")


def test_ask_runnable_composes_in_lcel(server):
    chain = RunnableLambda(lambda topic: f"What is the capital of {topic}?") | KiraAsk(
        server.url, api_key="lc-key", k=3, sources="text")
    out = chain.invoke("France")
    assert out["index_version"] and out["evidence"] and "timings" in out
    assert isinstance(out["answer"], str | None)
    outs = KiraAsk(server.url, api_key="lc-key", k=2).batch(
        ["Where was Mozart born?", {"question": "What do penguins do?", "k": 1}])
    assert len(outs) == 2 and all(o["evidence"] for o in outs) and len(outs[1]["evidence"]) <= 3


class _Dom(HTMLParser):
    """Collects text by element id and the <mark> texts of the dumped DOM."""

    def __init__(self):
        super().__init__()
        self.text: dict[str, str] = {}
        self.marks: list[str] = []
        self.stack: list[str | None] = []
        self.in_mark = 0
        self.evidence_items = 0

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.stack.append(a.get("id"))
        if tag == "mark":
            self.in_mark += 1
            self.marks.append("")
        if tag == "li" and "evidence" in (a.get("class") or "").split():
            self.evidence_items += 1

    def handle_endtag(self, tag):
        if self.stack:
            self.stack.pop()
        if tag == "mark":
            self.in_mark -= 1

    def handle_data(self, data):
        for ident in self.stack:
            if ident:
                self.text[ident] = self.text.get(ident, "") + data
        if self.in_mark:
            self.marks[-1] += data


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    assert path, "headless Chromium is required: apt-get install -y chromium"
    return path


def test_web_page_end_to_end_in_headless_chromium(served_ws, tmp_path):
    """The page asks through /v1/ask, shows the answer, the evidence with its sources, the answer
    span highlighted in its evidence, and the index version."""
    cfg = load_config(served_ws)
    with ServerThread(create_app(cfg)) as srv:
        version = srv.wait_ready()["index_version"]
        url = f"{srv.url}/?q=" + urllib.parse.quote("Which river flows through Vienna and Budapest?")
        proc = subprocess.run(
            [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-extensions", f"--user-data-dir={tmp_path / 'profile'}",
             "--virtual-time-budget=30000", "--dump-dom", url],
            capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    dom = _Dom()
    dom.feed(proc.stdout)
    assert dom.text.get("status", "").strip() == "done", (dom.text.get("error"), proc.stdout[-1500:])
    assert dom.text["version"].strip() == version
    assert dom.text.get("answer", "").strip()
    assert dom.evidence_items >= 1 and "Danube" in dom.text["evidence"] and "source tiny" in dom.text["evidence"]
    answer = dom.text["answer"].strip()
    if answer != "(no answer)":  # the reader's span is what the page highlights
        assert dom.marks and dom.marks[0].strip() == answer
