"""Dependencies injected into the routes.

They are `async def` although they never await: FastAPI runs a plain `def` dependency in
its thread pool, and three such hops per request cost more CPU than answering took
after the model (seen in a profile of the server under load).
"""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.engine import Engine
from api.settings import Settings

_bearer = HTTPBearer(auto_error=False, description="Needed only when RAG_API_KEY is set.")


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_engine(request: Request) -> Engine:
    return request.app.state.engine


async def require_api_key(
    settings: Annotated[Settings, Depends(get_settings)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Check the bearer token in constant time, when an API key is configured."""
    if settings.api_key is None:
        return
    expected = settings.api_key.get_secret_value().encode()
    # Header values arrive decoded as latin-1; encoding back gives the bytes sent, so a
    # non-ASCII key sent as UTF-8 matches too.
    given = credentials.credentials.encode("latin-1") if credentials else b""
    if not secrets.compare_digest(given, expected):
        raise HTTPException(
            401,
            "missing or wrong API key: send 'Authorization: Bearer <key>'",
            headers={"WWW-Authenticate": "Bearer"},
        )


SettingsDep = Annotated[Settings, Depends(get_settings)]
EngineDep = Annotated[Engine, Depends(get_engine)]
