"""Engine: the loaded pipeline behind the routes, with micro-batching and hot reload.

Micro-batching: questions wait in a bounded queue; one worker takes the first and every
other that is already waiting (or arrives within `batch_wait_ms`, but only while more
requests are in flight, or were in the previous batch, than it holds, so a lone client
never waits) and answers them with one forward pass of the model.

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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from api.settings import Settings
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
        # One thread runs the model, so forward passes never compete for the two cores.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="rag-model")
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
        while True:
            batch = await self._collect()
            batch = [job for job in batch if not job.future.done()]
            if not batch:
                continue
            qa = self.qa
            try:
                results = await loop.run_in_executor(self._executor, _answer_batch, qa, batch)
            except Exception as exc:  # delivered to each waiting request, logged by the API
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
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


def _answer_batch(qa: QA, batch: list[_Job]) -> list[Result | Exception]:
    """One forward pass for the batch. If the batch fails, its questions are answered one
    by one, so one bad question fails only its own request."""
    try:
        encoded = qa.encode([job.question for job in batch])
        return [
            qa.answer(job.question, e, job.top_k) for job, e in zip(batch, encoded, strict=True)
        ]
    except Exception:
        if len(batch) == 1:
            raise
        log.exception("a batch of %d failed; answering its questions one by one", len(batch))
    outcomes: list[Result | Exception] = []
    for job in batch:
        try:
            outcomes.extend(_answer_batch(qa, [job]))
        except Exception as exc:
            outcomes.append(exc)
    return outcomes
