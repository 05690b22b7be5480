"""Engine: the loaded pipeline behind the routes, with micro-batching and hot reload.

Micro-batching: questions wait in a bounded queue; one worker takes the first and every
other that is already waiting (or arrives within `batch_wait_ms`, but only while more
requests are in flight, or were in the previous batch, than it holds, so a lone client
never waits) and encodes them with one forward pass of the model.

Two stages, one thread each: the model thread encodes a batch and hands it to the
ranking thread (retrieve, extract, cite), then takes the next batch at once, so the
forward pass of one batch overlaps the ranking of the one before. At most two batches
are between the queue and their answers, so the queue stays the only buffer. A lone
question (nothing queued, nothing being ranked) is ranked on the model thread: a hand-off
between threads costs a wake-up, which is all that overlapping could win for it.

Hot reload: a watcher polls `manifest.json`; when its build id changes, the new index
is loaded beside the old one and swapped in with one assignment. A batch keeps the
pipeline it started with, so no request sees a half-loaded index. With
`wait_for_index`, the engine starts with no index and the watcher loads the first build
that appears; until then questions get 503 and `readiness()` says why.

Every stage reports to `Metrics` (api/observability/metrics.py): batch sizes, queue
depth, and each question's time waiting, in the forward pass and in ranking.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Collection
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from api.observability.context import annotate
from api.observability.metrics import Metrics
from api.settings import Settings
from rag.embedder import EncodedQuestion
from rag.errors import BackendUnavailableError, RagError
from rag.index import load_index
from rag.pipeline import QA, Result
from rag.request import check_question

log = logging.getLogger(__name__)


class OverloadedError(RagError):
    """The request queue is full."""


class IndexNotLoadedError(RagError):
    """No index has been loaded yet (the server was started with wait_for_index)."""


@dataclass
class _Job:
    question: str
    top_k: int
    future: asyncio.Future[Result]
    # Files the search is restricted to (checked names), or None for all.
    sources: frozenset[str] | None = None
    # perf_counter() when queued and when its batch was taken; seconds of its batch's
    # forward pass and of its own ranking (set by the worker threads before delivery).
    queued: float = 0.0
    taken: float = 0.0
    model_s: float = 0.0
    rank_s: float = 0.0
    # Build id of the index that answered (the pipeline its batch started with).
    build: str | None = None


class Engine:
    def __init__(self, qa: QA | None, settings: Settings, metrics: Metrics | None = None) -> None:
        self._qa = qa
        self.settings = settings
        self.metrics = metrics or Metrics()
        self.loaded_at = time.time()
        # Build id being loaded beside the served one (None when not loading), and why
        # the last load failed: readiness reports both.
        self.loading: str | None = None
        self._load_error: str | None = None
        self._backend_down = False  # the last load failed because the backend is away
        if qa is not None:
            self.metrics.served(qa.index.manifest, self.loaded_at)
        self.metrics.queue_depth.set_function(lambda: self._queue.qsize() if self._queue else 0)
        self.metrics.in_flight.set_function(lambda: self._inflight)
        self._queue: asyncio.Queue[_Job] | None = None
        self._inflight = 0
        self._tasks: list[asyncio.Task[None]] = []
        # One thread runs the model, so forward passes never compete for the two cores;
        # another ranks, so that work overlaps the next forward pass.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-model")
        self._rank_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-rank")
        self._stages: asyncio.Semaphore | None = None
        self._ranking = 0  # batches handed to the ranking thread and not yet delivered
        self._reload_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-reload")
        self._failed_build: str | None = None
        self.batches = 0
        self.batched_questions = 0
        # Size of the last batch: clients it answered tend to ask again at once.
        self._last_batch = 0

    @property
    def build_id(self) -> str | None:
        return self._qa.index.manifest.build_id if self._qa is not None else None

    @property
    def qa(self) -> QA:
        """The pipeline answering now; IndexNotLoadedError (a 503) before the first load."""
        if self._qa is None:
            raise IndexNotLoadedError(self._not_loaded())
        return self._qa

    def _not_loaded(self) -> str:
        if self.loading is not None:
            state = f"loading build {self.loading}"
        else:
            state = f"waiting for a build at {self.settings.index_dir}"
        # The last failure stays in the message while the next attempt runs: it is what
        # an operator needs to fix (a Qdrant server that does not answer).
        why = f" (last attempt: {self._load_error})" if self._load_error else ""
        return f"no index loaded yet; {state}{why}"

    def readiness(self) -> tuple[str, str] | None:
        """None when ready to answer; else (code, message) saying why not: no index
        loaded yet, a new build being loaded, or the index's backend not answering."""
        if self._qa is None:
            return ("backend_unreachable" if self._backend_down else "no_index"), self._not_loaded()
        if self.loading is not None:
            return (
                "reloading",
                f"loading index build {self.loading}; build {self.build_id} still answers",
            )
        try:
            ping(self._qa)
        except Exception as exc:  # whatever the client library raises, it is not ready
            return "backend_unreachable", f"the index's search backend does not answer: {exc}"
        return None

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.settings.queue_max)
        self._stages = asyncio.Semaphore(2)  # one batch encoding, one ranking
        self._tasks.append(asyncio.create_task(self._worker(), name="rag-batcher"))
        if self.settings.reload_interval > 0 or self._qa is None:
            self._tasks.append(asyncio.create_task(self._watch(), name="rag-reload"))

    async def stop(self, timeout: float = 10.0) -> None:
        """Answer every question already accepted (for at most `timeout` seconds), then
        stop the worker and the watcher. The server stops taking requests first, so the
        queue only empties from here on."""
        deadline = time.monotonic() + timeout
        while self._inflight and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if self._inflight:
            log.warning("stopping with %d questions unanswered after %gs", self._inflight, timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._rank_executor.shutdown(wait=False, cancel_futures=True)
        self._reload_executor.shutdown(wait=False, cancel_futures=True)

    async def ask(
        self, question: str, top_k: int, sources: Collection[str] | None = None
    ) -> Result:
        return (await self.ask_with_build(question, top_k, sources))[0]

    async def ask_with_build(
        self, question: str, top_k: int, sources: Collection[str] | None = None
    ) -> tuple[Result, str | None]:
        """The answer and the build id of the index it came from, which can differ from
        `build_id` by the time it returns (a reload swaps the index between batches)."""
        # The one check of a question (rag.request), with this server's length limit.
        question = check_question(question, top_k, self.settings.max_question_chars)
        # Unknown source names fail now (422), not after queueing; raises the 503 at once
        # when there is no index yet. The ranking checks again against the index it uses.
        allowed = self.qa.index.check_sources(sources)
        assert self._queue is not None, "Engine.start() was not awaited"
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        job = _Job(question, top_k, future, allowed, queued=time.perf_counter())
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            raise OverloadedError("the server is busy; retry in a moment") from None
        self._inflight += 1
        try:
            result = await future
        finally:
            self._inflight -= 1
        self._observe(job, result)
        return result, job.build

    def _observe(self, job: _Job, result: Result) -> None:
        total = time.perf_counter() - job.queued
        stages = {
            "queue": job.taken - job.queued,
            "model": job.model_s,
            "ranking": job.rank_s,
            "total": total,
        }
        for stage, seconds in stages.items():
            self.metrics.ask_seconds.labels(stage).observe(seconds)
        outcome = "null" if result.answer is None else "answered"
        self.metrics.answers.labels(outcome).inc()
        if self.settings.log_questions:  # off by default: questions can be sensitive
            annotate(question=job.question)
        annotate(
            answer=outcome,
            confidence=result.confidence,
            **{f"{stage}_ms": round(seconds * 1000, 2) for stage, seconds in stages.items()},
        )

    async def _collect(self) -> list[_Job]:
        assert self._queue is not None
        batch = [await self._queue.get()]
        deadline = time.perf_counter() + self.settings.batch_wait_ms / 1000
        # Requests still being read by the HTTP layer are not in flight here yet: after a
        # batch of n, its clients send their next questions within a moment, and without
        # this expectation the first of them would leave alone (batches alternating 1, n-1).
        # A lone client (last batch 1, nothing else in flight) still never waits.
        expected = self._last_batch
        while len(batch) < self.settings.batch_max_size:
            try:
                batch.append(self._queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            remaining = deadline - time.perf_counter()
            if max(self._inflight, expected) <= len(batch) or remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        return batch

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._stages is not None
        while True:
            batch = await self._collect()
            batch = [job for job in batch if not job.future.done()]
            if not batch:
                continue
            taken = time.perf_counter()
            for job in batch:
                job.taken = taken
            qa = self._qa
            for job in batch:
                job.build = qa.index.manifest.build_id if qa is not None else None
            await self._stages.acquire()
            assert self._queue is not None
            inline = len(batch) == 1 and self._ranking == 0 and self._queue.empty()
            self._ranking += not inline
            try:
                ranking = await loop.run_in_executor(
                    self._executor, self._encode_then_rank, qa, batch, inline
                )
            except Exception as exc:  # delivered to each waiting request, logged by the API
                self._stages.release()
                self._ranking -= not inline
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            ranking.add_done_callback(
                lambda done, batch=batch, inline=inline: loop.call_soon_threadsafe(
                    self._deliver, batch, done, inline
                )
            )

    def _encode_then_rank(
        self, qa: QA, batch: list[_Job], inline: bool
    ) -> Future[list[Result | Exception]]:
        """On the model thread: encode, then rank here (`inline`) or queue the ranking
        on its own thread."""
        started = time.perf_counter()
        encoded = _encode_batch(qa, batch)
        model_s = time.perf_counter() - started
        for job in batch:
            job.model_s = model_s
        if not inline:
            return self._rank_executor.submit(_rank_batch, qa, batch, encoded)
        done: Future[list[Result | Exception]] = Future()
        done.set_result(_rank_batch(qa, batch, encoded))
        return done

    def _deliver(
        self, batch: list[_Job], done: Future[list[Result | Exception]], inline: bool
    ) -> None:
        assert self._stages is not None
        self._stages.release()
        self._ranking -= not inline
        try:
            results: list[Result | Exception] = done.result()
        except BaseException as exc:  # cancelled at shutdown, or a bug in ranking
            results = [exc if isinstance(exc, Exception) else RagError("shutting down")] * len(
                batch
            )
        self.batches += 1
        self.batched_questions += len(batch)
        self.metrics.batch_size.observe(len(batch))
        self._last_batch = len(batch)
        # scripts/bench.py turns this logger to DEBUG to report the batch sizes achieved.
        log.debug("answered a batch of %d", len(batch))
        for job, result in zip(batch, results, strict=True):
            if job.future.done():
                continue
            if isinstance(result, Exception):
                job.future.set_exception(result)
            else:
                job.future.set_result(result)

    def _manifest_build_id(self) -> str | None:
        try:
            return json.loads((self.settings.index_dir / "manifest.json").read_text())["build_id"]
        except (OSError, ValueError, KeyError):
            return None

    async def reload(self) -> bool:
        """Load the index on disk if it is a new build; True if swapped in."""
        loop = asyncio.get_running_loop()
        build_id = await loop.run_in_executor(self._reload_executor, self._manifest_build_id)
        if build_id is None or build_id in (self.build_id, self._failed_build):
            return False
        self.loading = build_id
        try:
            fresh = await loop.run_in_executor(self._reload_executor, self._load, self._qa)
        except Exception as exc:  # RagError, or anything else a damaged file provokes
            now = await loop.run_in_executor(self._reload_executor, self._manifest_build_id)
            if now != build_id:
                # Another build was swapped in while this one loaded: not a damaged index,
                # so try again at the next poll instead of remembering it as failed.
                log.warning("index changed again while loading; retrying: %s", exc)
                return False
            self.metrics.reloads.labels("failure").inc()
            if isinstance(exc, BackendUnavailableError):
                # Not the build's fault: try it again at the next poll (Qdrant may be
                # back), and say so once per distinct reason, not every poll.
                if self._load_error != str(exc):
                    log.error("index build %s cannot be loaded yet: %s", build_id, exc)
                self._load_error = str(exc)
                self._backend_down = True
                return False
            self._failed_build = build_id
            self._load_error = str(exc)
            self._backend_down = False
            log.error(
                "index changed on disk but cannot be loaded, keeping the current one: %s"
                if self._qa is not None
                else "index cannot be loaded, still waiting for a usable build: %s",
                exc,
                exc_info=not isinstance(exc, RagError),
            )
            return False
        finally:
            self.loading = None
        self._qa = fresh
        self.loaded_at = time.time()
        self._load_error = None
        self._backend_down = False
        self.metrics.reloads.labels("success").inc()
        self.metrics.served(fresh.index.manifest, self.loaded_at)
        log.info("loaded index build %s", fresh.index.manifest.build_id)
        return True

    def _load(self, served: QA | None) -> QA:
        """On the reload thread: the new build beside the served one, sharing its model;
        the first build (no index served yet) brings its own, ready for questions."""
        if served is None:
            qa = QA.load(self.settings.index_dir)
            qa.embedder.prepare()
            return qa
        index = load_index(self.settings.index_dir, served.config)
        return QA(index, served.embedder)

    async def _watch(self) -> None:
        # Without an index yet, look at once and keep looking (every second if hot
        # reload is off) until one loads; then poll only if hot reload is on.
        while True:
            if self._qa is not None:
                if self.settings.reload_interval <= 0:
                    return
                await asyncio.sleep(self.settings.reload_interval)
            try:
                await self.reload()
            except Exception:
                log.exception("index reload check failed")
            if self._qa is None:
                await asyncio.sleep(self.settings.reload_interval or 1.0)


def _encode_batch(qa: QA, batch: list[_Job]) -> list[EncodedQuestion | Exception]:
    """One forward pass for the batch. If it fails, its questions are encoded one by
    one, so one bad question fails only its own request."""
    try:
        return list(qa.encode([job.question for job in batch]))
    except Exception:
        if len(batch) == 1:
            raise
        log.exception("a batch of %d failed; encoding its questions one by one", len(batch))
    outcomes: list[EncodedQuestion | Exception] = []
    for job in batch:
        try:
            outcomes.extend(qa.encode([job.question]))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes


def _rank_batch(
    qa: QA, batch: list[_Job], encoded: list[EncodedQuestion | Exception]
) -> list[Result | Exception]:
    """Retrieve, extract and cite for each question; a failure is its question's own."""
    started = time.perf_counter()
    ok = [e for e in encoded if not isinstance(e, Exception)]
    sims = iter(qa.similarities(ok))  # one product with the token store for the batch
    # Each question's ranking time: its share of the batch's product, plus its own.
    shared = (time.perf_counter() - started) / max(len(ok), 1)
    outcomes: list[Result | Exception] = []
    for job, e in zip(batch, encoded, strict=True):
        if isinstance(e, Exception):
            outcomes.append(e)
            continue
        own = time.perf_counter()
        try:
            outcomes.append(qa.answer(job.question, e, job.top_k, next(sims), job.sources))
        except Exception as exc:  # logged by the API with its request
            outcomes.append(exc)
        job.rank_s = shared + time.perf_counter() - own
    return outcomes


def ping(qa: QA) -> None:
    """Return if the search backend of `qa`'s index answers (SearchBackend.ping: the local
    backend always does; Qdrant when its collection can be read); raise if not."""
    qa.index.backend.ping()
