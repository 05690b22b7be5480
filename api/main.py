"""App factory: `create_app(settings)` loads the index and mounts routes and the chat page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles

from api import errors
from api.engine import Engine
from api.limits import BodySizeLimit
from api.routes import router
from api.settings import Settings
from rag.pipeline import QA

STATIC = Path(__file__).parent / "static"


def create_app(settings: Settings | None = None, qa: QA | None = None) -> FastAPI:
    """Build the app. The index is loaded here, before serving, so a damaged or missing
    index stops start-up with its error instead of failing every request."""
    settings = settings or Settings()
    qa = qa or QA.load(settings.index_dir)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.engine.start()
        try:
            yield
        finally:
            await app.state.engine.stop()

    app = FastAPI(
        title="Seeds QA",
        summary="Ask questions over a folder of articles; answers are verbatim and cited.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.engine = Engine(qa, settings)
    errors.install(app)
    app.include_router(router)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    if (STATIC / "index.html").is_file():
        app.mount("/", StaticFiles(directory=STATIC, html=True), name="chat")
    return app
