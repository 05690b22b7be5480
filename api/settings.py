"""Server settings, from arguments or the environment (prefix RAG_)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from rag.errors import RagError
from rag.request import MAX_QUESTION_CHARS


class SettingsError(RagError):
    """A setting (argument or RAG_ environment variable) has an invalid value."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RAG_", extra="ignore")

    index_dir: Path = Path("index")
    host: str = "127.0.0.1"
    port: int = 8000
    # When set, /ask and /sources need "Authorization: Bearer <key>".
    api_key: SecretStr | None = None
    # Origins allowed by CORS; empty means CORS is off. From the environment either
    # comma-separated (RAG_CORS_ORIGINS=https://a.example,https://b.example) or a JSON list.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Limits (RAG_MAX_QUESTION_CHARS, RAG_MAX_BODY_BYTES, RAG_BODY_TIMEOUT): a longer
    # question gets 422, a larger body 413, a body slower than the timeout 408.
    max_question_chars: int = Field(MAX_QUESTION_CHARS, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1)
    body_timeout: float = Field(30.0, gt=0)
    # Micro-batching: questions arriving within this window share one forward pass.
    batch_wait_ms: float = 2.0
    batch_max_size: int = 32
    queue_max: int = 256
    # Seconds between checks of index/manifest.json for a new build (0 turns it off).
    reload_interval: float = Field(1.0, ge=0)
    # Start serving before an index is loaded (RAG_WAIT_FOR_INDEX=1): the index, or the
    # first build to appear at index_dir, is loaded in the background while /health
    # answers and /ready says 503. Off: a missing or damaged index stops start-up.
    wait_for_index: bool = False
    # Logs: "text" (for people) or "json" (one object per line, RAG_LOG_FORMAT=json).
    log_format: Literal["text", "json"] = "text"
    # Questions can be sensitive: they are written to the log only when this is on.
    log_questions: bool = False
    # On SIGTERM: seconds the requests in flight get to finish before they are cancelled.
    shutdown_timeout: float = Field(10.0, gt=0)

    def __init__(self, **values: object) -> None:
        # A bad RAG_ variable stops `rag serve` with one line naming it, not a traceback.
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join(
                f"RAG_{'_'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
                for err in exc.errors()
            )
            raise SettingsError(f"invalid settings: {problems}") from None

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [o.strip() for o in text.split(",") if o.strip()]
        return value

    @field_validator("api_key", mode="after")
    @classmethod
    def _empty_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        # RAG_API_KEY= (empty) means no key, not a key that an empty bearer token matches.
        return value if value is not None and value.get_secret_value() else None
