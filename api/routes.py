"""Routes stay thin: validate, call the library, shape the response."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Path
from fastapi.responses import JSONResponse

from api.deps import EngineDep, require_api_key
from api.schemas import (
    AskRequest,
    AskResponse,
    ErrorResponse,
    Health,
    Paragraph,
    SourceDetail,
    SourceInfo,
    SourceList,
)
from rag.errors import SourceNotFoundError

router = APIRouter()
protected = APIRouter(dependencies=[Depends(require_api_key)])

_ERRORS = {
    401: {
        "model": ErrorResponse,
        "description": "Missing or wrong API key (only when one is set).",
    },
    422: {"model": ErrorResponse, "description": "Invalid request."},
}
_ASK_ERRORS = {
    **_ERRORS,
    400: {
        "model": ErrorResponse,
        "description": "The body is not JSON (malformed, not UTF-8, or not sent as "
        "Content-Type: application/json).",
    },
    408: {"model": ErrorResponse, "description": "The body did not arrive in time."},
    413: {"model": ErrorResponse, "description": "The body is over the size limit."},
    422: {
        "model": ErrorResponse,
        "description": "Missing, empty or too long question; top_k out of range or not an "
        "integer; a name in sources that is not an indexed file (the message names it); "
        "unknown field; body not a JSON object.",
    },
    503: {"model": ErrorResponse, "description": "Overloaded (retry) or index unavailable."},
}


@router.get("/health", response_model=Health, tags=["meta"])
async def health(engine: EngineDep) -> Health:
    manifest = engine.qa.index.manifest
    return Health(
        status="ok",
        model=manifest.model.name,
        dimension=manifest.model.dimension,
        built_at=manifest.built_at,
        build_id=manifest.build_id,
        counts=asdict(manifest.counts),
        backend=manifest.backend.kind,
        # The local backend's FAISS kind; a server backend runs its own dense index.
        dense_index=str(manifest.backend.settings.get("dense", manifest.backend.kind)),
        runtimes={
            # The index's documents were embedded when it was built, maybe elsewhere.
            "documents": manifest.model.runtime,
            "questions": engine.qa.embedder.describe()["questions"],
        },
    )


@protected.post(
    "/ask",
    response_model=AskResponse,
    responses=_ASK_ERRORS,
    tags=["qa"],
)
async def ask(body: AskRequest, engine: EngineDep) -> JSONResponse:
    """Answer a question with verbatim text from the articles and exact citations."""
    result, build = await engine.ask_with_build(body.question, body.top_k, body.sources)
    # AskResponse is the library's `Result`: returning its dict directly skips a second
    # validation of every citation on the hot path. X-Index-Build names the build that
    # answered, so a client (and the hot-reload test) can tie the citations to one index.
    headers = {"X-Index-Build": build} if build else None
    return JSONResponse(result.to_dict(), headers=headers)


@protected.get("/sources", response_model=SourceList, responses=_ERRORS, tags=["sources"])
async def sources(engine: EngineDep) -> SourceList:
    index = engine.qa.index
    return SourceList(
        sources=[
            SourceInfo(
                source=name,
                sha256=doc.sha256,
                chars=len(doc.text),
                paragraphs=len(index.paragraphs(name)),
            )
            for name, doc in sorted(index.documents.items())
        ]
    )


@protected.get(
    "/sources/{name:path}",
    response_model=SourceDetail,
    responses={**_ERRORS, 404: {"model": ErrorResponse}},
    tags=["sources"],
)
async def source(
    engine: EngineDep, name: str = Path(description="A name from GET /sources.")
) -> SourceDetail:
    """A file's paragraphs with their numbers and offsets. Names are looked up among the
    indexed sources only; nothing is read from disk, so no path can escape the corpus."""
    index = engine.qa.index
    doc = index.documents.get(name)
    if doc is None:
        raise SourceNotFoundError(name)
    return SourceDetail(
        source=name,
        sha256=doc.sha256,
        paragraphs=[
            Paragraph(
                paragraph=p.number,
                start=p.start,
                end=p.end,
                kind=p.kind,
                text=doc.text[p.start : p.end],
            )
            for p in index.paragraphs(name)
        ],
    )


router.include_router(protected)
