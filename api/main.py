"""App factory: `create_app(settings)` loads the index and mounts routes, the docs, the
probes and metrics, and the chat page."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.staticfiles import StaticFiles
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import Scope

from api import docs, errors
from api.engine import Engine
from api.limits import BodySizeLimit
from api.observability import requests
from api.observability import routes as observability
from api.observability.metrics import Metrics
from api.routes import router
from api.settings import Settings
from rag.pipeline import QA
from rag.runtime import configure

STATIC = Path(__file__).parent / "static"


class _PageMount(Mount):
    """The chat page at "/", for GET and HEAD of paths that are not API routes. A plain
    mount at "/" matches every path and method, so `GET /ask` got the page's 404 and
    `DELETE /ask` its 405 (Allow: GET, HEAD) instead of the route's 405 (Allow: POST)."""

    def __init__(self, path: str, app: StaticFiles, routes: list[BaseRoute], name: str) -> None:
        super().__init__(path, app=app, name=name)
        self._routes = routes

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http":
            if scope["method"] not in ("GET", "HEAD"):
                return Match.NONE, {}
            for route in self._routes:
                if route is not self and route.matches(scope)[0] != Match.NONE:
                    return Match.NONE, {}
        return super().matches(scope)


def _describe_limits_and_security(app: FastAPI, settings: Settings) -> None:
    """Make /openapi.json describe the server as configured: the question's limits (the
    route checks them, with clearer messages than the model would give), and, without
    RAG_API_KEY, no bearer token or 401 on any operation."""
    build = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = build()
            ask = schema.get("components", {}).get("schemas", {}).get("AskRequest", {})
            question = ask.get("properties", {}).get("question")
            if question is not None:
                # Not empty, not only whitespace, at most max_question_chars characters.
                question.update(minLength=1, maxLength=settings.max_question_chars, pattern=r"\S")
            if settings.api_key is None:
                for operations in schema.get("paths", {}).values():
                    for operation in operations.values():
                        operation.pop("security", None)
                        operation.get("responses", {}).pop("401", None)
                schema.get("components", {}).pop("securitySchemes", None)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def create_app(settings: Settings | None = None, qa: QA | None = None) -> FastAPI:
    """Build the app. The index is loaded here, before serving, so a damaged or missing
    index stops start-up with its error instead of failing every request; with
    `settings.wait_for_index` it is loaded in the background instead (see Engine)."""
    configure()
    settings = settings or Settings()
    if qa is None and not settings.wait_for_index:
        qa = QA.load(settings.index_dir)
    if qa is not None:
        qa.embedder.prepare()  # the question encoder, before the first request, not in it

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await app.state.engine.start()
        try:
            yield
        finally:
            await app.state.engine.stop(settings.shutdown_timeout)

    app = FastAPI(
        title="Seeds QA",
        summary="Ask questions over a folder of articles; answers are verbatim and cited.",
        version="0.1.0",
        lifespan=lifespan,
        docs_url=None,  # served by api/docs.py from local assets, not a CDN
        redoc_url=None,
    )
    metrics = Metrics()
    engine = Engine(qa, settings, metrics)
    metrics.ready.set_function(lambda: float(engine.readiness() is None))
    app.state.settings = settings
    app.state.engine = engine
    app.state.metrics = metrics
    errors.install(app)
    _describe_limits_and_security(app, settings)
    app.include_router(router)
    app.include_router(observability.router)
    docs.install(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "X-Request-ID"],
            # So that a page on another origin can read the id to quote it in a report.
            expose_headers=["X-Request-ID"],
        )
    app.add_middleware(
        BodySizeLimit, max_bytes=settings.max_body_bytes, timeout=settings.body_timeout
    )
    if (STATIC / "index.html").is_file():
        page = StaticFiles(directory=STATIC, html=True)
        app.router.routes.append(_PageMount("/", page, app.router.routes, name="chat"))
    requests.install(app, metrics)
    return app
