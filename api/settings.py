"""Server settings, from arguments or the environment (prefix RAG_)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    index_dir: Path = Path("index")
    host: str = "127.0.0.1"
    port: int = 8000
    # When set, /ask and /sources need "Authorization: Bearer <key>".
    api_key: SecretStr | None = None
    # Origins allowed by CORS; empty means CORS is off.
    cors_origins: list[str] = Field(default_factory=list)
    max_question_chars: int = 2000
    max_body_bytes: int = 64 * 1024
    # Micro-batching: questions arriving within this window share one forward pass.
    batch_wait_ms: float = 2.0
    batch_max_size: int = 32
    queue_max: int = 256
    # Seconds between checks of index/manifest.json for a new build (0 turns it off).
    reload_interval: float = 1.0
