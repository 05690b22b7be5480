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
pipeline it started with, so no request sees a half-loaded index.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from api.settings import Settings
from rag.embedder import EncodedQuestion
from rag.errors import RagError
from rag.index import load_index
from rag.pipeline import QA, Result, check_question

log = logging.getLogger(__name__)


class OverloadedError(RagError):
    """The request queue is full."""


@dataclass
class _Job:
    question: str
    top_k: int
    future: asyncio.Future[Result]


class Engine:
    def __init__(self, qa: QA, settings: Settings) -> None:
        self.qa = qa
        self.settings = settings
        self.loaded_at = time.time()
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
    def build_id(self) -> str:
        return self.qa.index.manifest["build_id"]

    async def start(self) -> None:
        self._queue = asyncio.Queue(maxsize=self.settings.queue_max)
        self._stages = asyncio.Semaphore(2)  # one batch encoding, one ranking
        self._tasks.append(asyncio.create_task(self._worker(), name="rag-batcher"))
        if self.settings.reload_interval > 0:
            self._tasks.append(asyncio.create_task(self._watch(), name="rag-reload"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._rank_executor.shutdown(wait=False, cancel_futures=True)
        self._reload_executor.shutdown(wait=False, cancel_futures=True)

    async def ask(self, question: str, top_k: int) -> Result:
        question = check_question(question, top_k)
        assert self._queue is not None, "Engine.start() was not awaited"
        future: asyncio.Future[Result] = asyncio.get_running_loop().create_future()
        try:
            self._queue.put_nowait(_Job(question, top_k, future))
        except asyncio.QueueFull:
            raise OverloadedError("the server is busy; retry in a moment") from None
        self._inflight += 1
        try:
            return await future
        finally:
            self._inflight -= 1

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
            qa = self.qa
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
        encoded = _encode_batch(qa, batch)
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
        try:
            index = await loop.run_in_executor(
                self._reload_executor, load_index, self.settings.index_dir, self.qa.config
            )
            fresh = QA(index, self.qa.embedder)
        except Exception as exc:  # RagError, or anything else a damaged file provokes
            now = await loop.run_in_executor(self._reload_executor, self._manifest_build_id)
            if now != build_id:
                # Another build was swapped in while this one loaded: not a damaged index,
                # so try again at the next poll instead of remembering it as failed.
                log.warning("index changed again while loading; retrying: %s", exc)
                return False
            self._failed_build = build_id
            log.error(
                "index changed on disk but cannot be loaded, keeping the current one: %s",
                exc,
                exc_info=not isinstance(exc, RagError),
            )
            return False
        self.qa = fresh
        self.loaded_at = time.time()
        log.info("reloaded index build %s", fresh.index.manifest["build_id"])
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval)
            try:
                await self.reload()
            except Exception:
                log.exception("index reload check failed")


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
    ok = [e for e in encoded if not isinstance(e, Exception)]
    sims = iter(qa.similarities(ok))  # one product with the token store for the batch
    outcomes: list[Result | Exception] = []
    for job, e in zip(batch, encoded, strict=True):
        if isinstance(e, Exception):
            outcomes.append(e)
            continue
        try:
            outcomes.append(qa.answer(job.question, e, job.top_k, next(sims)))
        except Exception as exc:  # logged by the API with its request
            outcomes.append(exc)
    return outcomes
