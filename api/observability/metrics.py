"""Prometheus metrics of one app, in a registry of its own (not prometheus_client's
global one), so several apps in one process, as in the tests, never share a counter.

Names (the `_total`, `_bucket`, `_sum`, `_count` suffixes are prometheus_client's):

| metric | type | labels |
|---|---|---|
| rag_http_requests_total | counter | route (template: /sources/{name}), method, status |
| rag_http_request_duration_seconds | histogram | route, method |
| rag_errors_total | counter | code (the `error.code` of the response), status |
| rag_ask_duration_seconds | histogram | stage: queue, model, ranking, total |
| rag_answers_total | counter | outcome: answered, null |
| rag_batch_size | histogram | (questions per forward pass) |
| rag_queue_depth | gauge | (questions waiting for the model) |
| rag_questions_in_flight | gauge | (questions queued or being answered) |
| rag_index_info | info | build_id, built_at, model, backend (local, qdrant) |
| rag_index_chunks, rag_index_documents | gauge | |
| rag_index_loaded_timestamp_seconds | gauge | |
| rag_index_reloads_total | counter | outcome: success, failure |
| rag_ready | gauge | 1 when GET /ready would answer 200 |
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    generate_latest,
)

if TYPE_CHECKING:
    from rag.index.manifest import Manifest

# /ask answers in ~10 ms alone and in tens of ms under load; a reload or an overloaded
# queue takes seconds.
LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075,
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
# Powers of two up to well past RAG_BATCH_MAX_SIZE's default of 32.
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)

UNMATCHED = "<unmatched>"  # the route label of a path no route matches (404s)


class Metrics:
    """Every metric the server exposes, registered in `self.registry`."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter(
            "rag_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.request_seconds = Histogram(
            "rag_http_request_duration_seconds",
            "Time from a request's arrival to its last byte sent, by route template.",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "rag_errors",
            "Error responses by their error.code and HTTP status.",
            ["code", "status"],
            registry=r,
        )
        self.ask_seconds = Histogram(
            "rag_ask_duration_seconds",
            "POST /ask by stage: queue (waiting for the model thread), model (the forward "
            "pass of the question's batch), ranking (retrieval, answer extraction and "
            "citations), total (queue to answer).",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.answers = Counter(
            "rag_answers",
            "Questions answered, by outcome: answered (verbatim answer) or null (abstained).",
            ["outcome"],
            registry=r,
        )
        self.batch_size = Histogram(
            "rag_batch_size",
            "Questions per forward pass of the micro-batcher.",
            buckets=BATCH_BUCKETS,
            registry=r,
        )
        self.queue_depth = Gauge(
            "rag_queue_depth", "Questions waiting for the model thread.", registry=r
        )
        self.in_flight = Gauge(
            "rag_questions_in_flight",
            "Questions queued or being answered.",
            registry=r,
        )
        self.index = Info("rag_index", "The index being served.", registry=r)
        self.index_chunks = Gauge("rag_index_chunks", "Chunks in the served index.", registry=r)
        self.index_documents = Gauge(
            "rag_index_documents", "Documents in the served index.", registry=r
        )
        self.index_loaded = Gauge(
            "rag_index_loaded_timestamp_seconds",
            "Unix time the served index was loaded (0: none yet).",
            registry=r,
        )
        self.reloads = Counter(
            "rag_index_reloads",
            "Loads of a new build found on disk while serving, by outcome (success, "
            "failure: the build was refused and the served index kept).",
            ["outcome"],
            registry=r,
        )
        for outcome in ("success", "failure"):
            self.reloads.labels(outcome)  # both series exist from the start, at 0
        for outcome in ("answered", "null"):
            self.answers.labels(outcome)
        self.ready = Gauge("rag_ready", "1 when GET /ready answers 200, else 0.", registry=r)

    def served(self, manifest: Manifest, loaded_at: float) -> None:
        """Describe the index that is now answering."""
        self.index.info(
            {
                "build_id": manifest.build_id,
                "built_at": manifest.built_at,
                "model": manifest.model.name,
                "backend": manifest.backend.kind,
            }
        )
        self.index_chunks.set(manifest.counts.chunks)
        self.index_documents.set(manifest.counts.documents)
        self.index_loaded.set(loaded_at)

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
