"""Operations: liveness, readiness, Prometheus metrics and the web page."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse, Response

from kira.serve.routes import StateDep
from kira.serve.schemas import Problem, RequestModels

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"


def router(models: RequestModels) -> APIRouter:
    """The routes, with request bodies whose limits come from the app's config."""
    router = APIRouter()

    # ---- operations ----
    @router.get("/healthz", tags=["ops"])
    async def healthz() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @router.get("/readyz", tags=["ops"], responses={503: {"model": Problem}})
    async def readyz(st: StateDep) -> JSONResponse:
        """Ready once an index version is loaded."""
        snap = st.holder.current
        if snap is None:
            return JSONResponse({"ready": False, "index_version": None, "error": st.holder.last_error},
                                status_code=503)
        return JSONResponse({"ready": True, "index_version": snap.version, "swaps": st.holder.swaps})

    @router.get("/metrics", tags=["ops"], response_class=Response)
    async def prometheus(st: StateDep) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(st.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    # ---- the web page ----
    @router.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    return router
