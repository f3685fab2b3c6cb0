"""LangChain integration, with ``langchain-core`` only.

* :class:`KiraRetriever` — a ``BaseRetriever`` over kira retrieval: either in-process over any
  ``kira.schema.Retriever`` (``retriever=``) or over a running server's ``/v1/search``
  (``base_url=``). Each hit becomes a ``Document`` whose metadata keeps kira's provenance
  (id, title, score, kind, source, retriever, metadata).
* :class:`KiraAsk` — a ``Runnable`` that sends a question (or ``{"question": …, "k": …}``) to
  ``/v1/ask`` and returns the answer dict, so kira composes into LCEL chains (``prompt | KiraAsk()``).
"""

from __future__ import annotations

from typing import Any

import httpx
from langchain_core.callbacks import AsyncCallbackManagerForRetrieverRun, CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableConfig
from pydantic import ConfigDict


def _document(hit: dict[str, Any]) -> Document:
    meta = {k: hit.get(k) for k in ("id", "title", "score", "kind", "source", "retriever")}
    meta["metadata"] = hit.get("metadata") or {}
    return Document(page_content=hit.get("text", ""), metadata=meta, id=hit.get("id") or None)


def _headers(api_key: str | None) -> dict[str, str]:
    return {"X-API-Key": api_key} if api_key else {}


class KiraRetriever(BaseRetriever):
    """kira retrieval as LangChain documents (in-process or over HTTP)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Any = None  # a kira.schema.Retriever, for in-process use
    base_url: str | None = None  # a kira server, for HTTP use
    k: int = 4
    method: str = "hybrid"
    api_key: str | None = None
    timeout: float = 30.0

    def _payload(self, query: str) -> dict[str, Any]:
        return {"query": query, "k": self.k, "method": self.method}

    def _check(self) -> None:
        if (self.retriever is None) == (self.base_url is None):
            raise ValueError("KiraRetriever needs exactly one of retriever= (in-process) or base_url= (HTTP)")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        self._check()
        if self.retriever is not None:
            return [_document(e.to_dict()) for e in self.retriever.search(query, k=self.k)]
        r = httpx.post(f"{self.base_url.rstrip('/')}/v1/search", json=self._payload(query),
                       headers=_headers(self.api_key), timeout=self.timeout)
        r.raise_for_status()
        return [_document(h) for h in r.json()["hits"]]

    async def _aget_relevant_documents(self, query: str, *,
                                       run_manager: AsyncCallbackManagerForRetrieverRun) -> list[Document]:
        self._check()
        if self.retriever is not None:
            return self._get_relevant_documents(query, run_manager=run_manager.get_sync())
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            r = await client.post(f"{self.base_url.rstrip('/')}/v1/search", json=self._payload(query),
                                  headers=_headers(self.api_key))
        r.raise_for_status()
        return [_document(h) for h in r.json()["hits"]]


class KiraAsk(Runnable[str | dict, dict]):
    """``invoke("question")`` or ``invoke({"question": …, "k": …, "sources": …})`` → ``/v1/ask`` answer."""

    def __init__(self, base_url: str, api_key: str | None = None, timeout: float = 60.0, **defaults: Any):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout
        self.defaults = defaults  # k, sources, reader, method

    def _payload(self, input: str | dict) -> dict[str, Any]:
        if isinstance(input, str):
            return {**self.defaults, "question": input}
        if hasattr(input, "to_string"):  # a PromptValue from an LCEL prompt
            return {**self.defaults, "question": input.to_string()}
        if isinstance(input, dict) and "question" in input:
            return {**self.defaults, **input}
        raise TypeError("KiraAsk takes a question string or a dict with a 'question' key")

    def invoke(self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any) -> dict:
        r = httpx.post(f"{self.base_url}/v1/ask", json=self._payload(input), headers=_headers(self.api_key),
                       timeout=self.timeout)
        r.raise_for_status()
        return r.json()

    async def ainvoke(self, input: str | dict, config: RunnableConfig | None = None, **kwargs: Any) -> dict:
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            r = await client.post(f"{self.base_url}/v1/ask", json=self._payload(input),
                                  headers=_headers(self.api_key))
        r.raise_for_status()
        return r.json()
