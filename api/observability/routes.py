"""GET /ready and GET /metrics. Both are open, like /health: probes and scrapers carry
no API key, and neither says anything about the corpus beyond its size and build id."""

from __future__ import annotations

import anyio
from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.deps import EngineDep
from api.errors import error_response
from api.schemas import ErrorResponse

router = APIRouter(tags=["meta"])


@router.get(
    "/ready",
    responses={
        200: {
            "description": "An index is loaded and its backend answers.",
            "content": {
                "application/json": {"example": {"status": "ready", "build_id": "3f2a..."}}
            },
        },
        503: {
            "model": ErrorResponse,
            "description": "Not ready: no index loaded yet (`no_index`), a new build being "
            "loaded (`reloading`), or the search backend not answering "
            "(`backend_unreachable`).",
        },
    },
)
async def ready(engine: EngineDep) -> JSONResponse:
    """Readiness, for a load balancer: 200 when this replica can answer questions now."""
    # In a thread: pinging a remote backend is network I/O.
    problem = await anyio.to_thread.run_sync(engine.readiness)
    if problem is not None:
        code, message = problem
        return error_response(503, code, message, {"Retry-After": "1"})
    return JSONResponse({"status": "ready", "build_id": engine.build_id})


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics of this process (names and labels: README, Operations)."""
    # In a thread: the readiness gauge may ping a remote backend.
    body, content_type = await anyio.to_thread.run_sync(request.app.state.metrics.exposition)
    return Response(body, media_type=content_type)
