"""Question answering and retrieval: ``/v1/ask`` (micro-batched) and ``/v1/search``."""

import asyncio

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse

from kira.serve import service
from kira.serve.routes import StateDep
from kira.serve.schemas import AskResponse, Problem, RequestModels, SearchResponse
from kira.serve.security import require_api_key


def router(models: RequestModels) -> APIRouter:
    """The routes, with request bodies whose limits come from the app's config."""
    router = APIRouter()

    @router.post("/v1/ask", response_model=AskResponse, dependencies=[Depends(require_api_key)],
              responses={503: {"model": Problem}, 504: {"model": Problem}}, tags=["qa"])
    async def ask(req: models.ask, st: StateDep) -> JSONResponse:
        """Answer a question with its evidence, per-stage timings and the index version used."""
        snap = st.holder.get()  # taken once: this request finishes on this snapshot whatever swaps
        key = (id(snap), req.k, req.sources, req.reader, req.method)
        try:
            result, waited, batch = await asyncio.wait_for(st.batcher.submit(key, (snap, req.question)),
                                                           st.cfg.serve.request_timeout_s)
        except TimeoutError:
            raise HTTPException(504, f"no answer within {st.cfg.serve.request_timeout_s:g}s") from None
        out = dict(result)
        out["timings"] = {**out.get("timings", {}), "queue": waited}
        out["batch_size"] = batch
        out["index_version"] = snap.version
        st.metrics.observe_stages(out["timings"])
        return JSONResponse(out)  # already normalised to AskResponse's shape; skip re-validation per request

    @router.post("/v1/search", response_model=SearchResponse, dependencies=[Depends(require_api_key)],
              responses={503: {"model": Problem}, 504: {"model": Problem}}, tags=["qa"])
    async def search(req: models.search, st: StateDep) -> JSONResponse:
        """Retrieval only: ranked evidence from BM25, dense or hybrid search."""
        import time

        snap = st.holder.get()
        t0 = time.perf_counter()
        try:
            hits = await asyncio.wait_for(st.batcher.run(snap.engine.search, req.query, req.k, req.method),
                                          st.cfg.serve.request_timeout_s)
        except TimeoutError:
            raise HTTPException(504, f"no results within {st.cfg.serve.request_timeout_s:g}s") from None
        elapsed = time.perf_counter() - t0
        st.metrics.observe_stages({"search": elapsed})
        return JSONResponse({"schema_version": service.API_SCHEMA_VERSION, "query": req.query,
                             "method": req.method, "index_version": snap.version,
                             "hits": hits, "timings": {"search": elapsed}})

    return router
