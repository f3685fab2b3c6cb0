"""KB reads: entity lookup and link prediction."""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from starlette.concurrency import run_in_threadpool

from kira.serve.routes import StateDep
from kira.serve.schemas import NAME_RE, EntitiesResponse, LinkPredictResponse, Problem, RequestModels
from kira.serve.security import clean_text, require_api_key


def router(models: RequestModels) -> APIRouter:
    """The routes, with request bodies whose limits come from the app's config."""
    router = APIRouter()

    @router.get("/v1/kb/entities", response_model=EntitiesResponse, dependencies=[Depends(require_api_key)],
             tags=["kb"])
    async def entities(st: StateDep, q: Annotated[str, Query(min_length=1, max_length=200, description="Name or alias")],
                       kb: Annotated[str | None, Query(max_length=64, pattern=NAME_RE.pattern)] = None,
                       limit: Annotated[int, Query(ge=1, le=100)] = 20) -> dict[str, Any]:
        """Entities whose name or alias matches ``q`` (exact first, then prefix)."""
        try:
            text = clean_text(q, "q", 200)
        except ValueError as e:
            raise HTTPException(422, str(e)) from None
        found = await run_in_threadpool(st.workspace.find_entities, text, kb, limit)
        return {"query": text, "entities": found}

    @router.post("/v1/kb/link-predict", response_model=LinkPredictResponse,
              dependencies=[Depends(require_api_key)], responses={404: {"model": Problem}}, tags=["kb"])
    async def link_predict(req: models.link_predict, st: StateDep) -> dict[str, Any]:
        """Rank tail entities for (head, relation, ?) with the KB's trained embedding model."""
        return await run_in_threadpool(st.workspace.link_predict, req.kb, req.head, req.relation, req.k)

    return router
