"""Fuzz the API with schemathesis against its own OpenAPI schema, on real servers.

Positive and negative cases (data that fits the schema, and data that breaks it) for
every operation, with a bounded number of examples so CI takes about a minute. The pass
mark: no 5xx, every response conforms to the schema (status documented, body matching
its model, content type declared), invalid data rejected with a 4xx, and, on a server
with RAG_API_KEY, no operation answering without the key.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from unittest.mock import MagicMock

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import positive_data_acceptance

from api.main import create_app
from api.settings import Settings
from tests.servers import Server, serve

pytestmark = pytest.mark.slow

# Examples per operation and generation mode (positive, negative): about a minute in all.
MAX_EXAMPLES = 40
KEY = "fuzz-key"
HYPOTHESIS = {
    "deadline": None,
    "derandomize": True,
    "database": None,
    "suppress_health_check": list(HealthCheck),
}


def _schema(api_key: str | None, max_examples: int) -> schemathesis.schemas.BaseSchema:
    """The app's own OpenAPI document, as the server configured with `api_key` serves it.
    It does not depend on the index, so it comes from an app over a stub pipeline at
    import time (schemathesis' lazy fixture loader does not work with pytest 9); the
    cases are sent to real servers."""
    app = create_app(Settings(index_dir=Path("unused"), api_key=api_key), qa=MagicMock())
    schema = schemathesis.openapi.from_dict(app.openapi())
    schema.config.generation.update(
        modes=["positive", "negative"],
        max_examples=max_examples,
        deterministic=True,
        database="none",
    )
    return schema


open_schema = _schema(None, MAX_EXAMPLES)
locked_schema = _schema(KEY, MAX_EXAMPLES // 4)


@pytest.fixture(scope="module")
def locked_server(
    seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with serve(
        seed_index_dir, tmp_path_factory.mktemp("fuzz-locked"), env={"RAG_API_KEY": KEY}
    ) as s:
        yield s


def by_design(case: schemathesis.Case) -> list:
    """Checks that do not apply to a case. A file name in `sources` fits the schema
    whatever it is, but one that is not indexed gets 422 naming it (README, HTTP API):
    no schema can list the files of the index being served."""
    body = case.body if isinstance(case.body, dict) else {}
    return [positive_data_acceptance] if body.get("sources") else []


def assert_log_clean(server: Server) -> None:
    """Each case checks the server log right after its own request, so the check holds
    whichever cases run, alone or in any order."""
    log = server.log()
    assert "Traceback" not in log, log[-4000:]
    # The request log line: "POST /ask 500 12.3 ms ... status=500".
    assert " 500 " not in log and "status=500" not in log, log[-4000:]


@open_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, **HYPOTHESIS)
def test_open_api_conforms_to_its_schema(case: schemathesis.Case, live_server: Server) -> None:
    case.call_and_validate(base_url=live_server.url, timeout=30, excluded_checks=by_design(case))
    assert_log_clean(live_server)


@locked_schema.parametrize()
@settings(max_examples=MAX_EXAMPLES // 4, **HYPOTHESIS)
def test_key_protected_api_conforms_to_its_schema(
    case: schemathesis.Case, locked_server: Server
) -> None:
    case.call_and_validate(
        base_url=locked_server.url,
        headers={"Authorization": f"Bearer {KEY}"},
        timeout=30,
        excluded_checks=by_design(case),
    )
    assert_log_clean(locked_server)


def test_schema_describes_auth_only_when_a_key_is_set() -> None:
    assert "securitySchemes" not in open_schema.raw_schema.get("components", {})
    assert "401" not in open_schema.raw_schema["paths"]["/ask"]["post"]["responses"]
    ask = locked_schema.raw_schema["paths"]["/ask"]["post"]
    assert ask["security"]
    assert "401" in ask["responses"]
    assert "security" not in locked_schema.raw_schema["paths"]["/health"]["get"]
