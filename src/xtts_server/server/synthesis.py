"""Running the model off the event loop: admission, worker threads, cancellation.

The event loop never waits on the model: each synthesis runs in a worker thread and hands its chunks
to the loop through an asyncio queue. Admission is bounded (running + queued), so an overloaded
server answers 503 at once instead of growing without limit. When the consumer goes away (client
disconnect), the worker's cancel event is set and decoding stops at the next step.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from xtts_server.errors import Cancelled
from xtts_server.server.errors import Overloaded
from xtts_server.tts import AudioChunk

logger = logging.getLogger(__name__)

_DONE = object()


@dataclass
class _Failure:
    error: BaseException


class Synthesizer:
    def __init__(self, max_concurrent: int, max_queued: int) -> None:
        self.max_concurrent = max_concurrent
        self.max_queued = max_queued
        self._executor = ThreadPoolExecutor(max_concurrent, thread_name_prefix="xtts-synth")
        self._admitted = 0  # running + waiting for a worker
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._admitted

    def _admit(self) -> None:
        with self._lock:
            if self._admitted >= self.max_concurrent + self.max_queued:
                raise Overloaded(
                    f"the server is busy ({self._admitted} requests running or queued); retry shortly"
                )
            self._admitted += 1

    def _release(self, _: object = None) -> None:
        with self._lock:
            self._admitted -= 1

    async def stream(
        self, produce: Callable[[threading.Event], Iterator[AudioChunk]]
    ) -> AsyncGenerator[AudioChunk, None]:
        """Run `produce(cancel)` in a worker and yield its chunks. Closing this iterator early
        (client gone) cancels the work. Errors from the worker are raised here."""
        self._admit()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: object) -> None:
            with contextlib.suppress(RuntimeError):  # the loop is gone (shutdown)
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                if cancel.is_set():
                    return
                for chunk in produce(cancel):
                    put(chunk)
            except Cancelled:
                pass
            except BaseException as e:  # handed to the consumer, which raises it
                put(_Failure(e))
            finally:
                put(_DONE)

        # The slot is freed when the worker really ends (at most one decode step after a cancel).
        loop.run_in_executor(self._executor, work).add_done_callback(self._release)
        try:
            while True:
                item = await queue.get()
                if item is _DONE:
                    break
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            cancel.set()

    async def relay(self, chunks: AsyncGenerator[AudioChunk, None]) -> AsyncGenerator[AudioChunk, None]:
        """Admission for work that runs elsewhere (the batching engine, which needs no worker
        thread): a slot is held while `chunks` runs; closing this iterator closes `chunks`."""
        self._admit()
        try:
            async for chunk in chunks:
                yield chunk
        finally:
            try:
                await chunks.aclose()
            finally:
                self._release()

    async def run(self, fn: Callable[[], Any]) -> Any:
        """Run a one-shot model call (e.g. cloning a voice) in a worker, under the same admission."""
        self._admit()
        # The slot is freed when the job really ends: a job already running goes on when the
        # awaiting request is cancelled (client gone), and the asyncio future of run_in_executor
        # would then be done (cancelled) at once, freeing the slot early.
        try:
            job = self._executor.submit(fn)
        except BaseException:  # shut down: nothing will run, so nothing will release the slot
            self._release()
            raise
        job.add_done_callback(self._release)
        return await asyncio.wrap_future(job)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
