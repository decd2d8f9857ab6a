"""The synthesizer's admission and slots, without HTTP: a slot is held exactly as long as the work
runs, whatever happens to the request that started it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import numpy as np
import pytest

from xtts_server.errors import Cancelled
from xtts_server.server.errors import Overloaded
from xtts_server.server.synthesis import Synthesizer
from xtts_server.tts import AudioChunk


def chunk(i: int) -> AudioChunk:
    return AudioChunk(np.full(10, i, np.float32), 24000, 0, "x", False, "en")


async def wait_for(condition, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_run_keeps_the_slot_until_the_job_ends_even_if_the_caller_is_cancelled() -> None:
    synth = Synthesizer(max_concurrent=1, max_queued=0)
    started, release = threading.Event(), threading.Event()

    def job() -> str:
        started.set()
        assert release.wait(10)
        return "done"

    async def main() -> None:
        task = asyncio.ensure_future(synth.run(job))
        await asyncio.to_thread(started.wait, 5)
        task.cancel()  # the client went away while the job runs
        with pytest.raises(asyncio.CancelledError):
            await task
        # the job still runs: its slot is still taken, a second request is refused
        assert synth.in_flight == 1
        with pytest.raises(Overloaded):
            await synth.run(lambda: "x")
        release.set()
        await wait_for(lambda: synth.in_flight == 0)
        assert await synth.run(lambda: "again") == "again"

    try:
        asyncio.run(main())
    finally:
        release.set()
        synth.shutdown()


def test_stream_cancels_on_close_and_frees_the_slot_when_the_worker_ends() -> None:
    synth = Synthesizer(max_concurrent=1, max_queued=1)
    steps: list[int] = []
    seen: list[threading.Event] = []

    def produce(cancel: threading.Event) -> Iterator[AudioChunk]:
        seen.append(cancel)
        for i in range(1000):
            if cancel.is_set():
                raise Cancelled("stopped")
            steps.append(i)
            yield chunk(i)
            cancel.wait(0.005)

    async def main() -> None:
        stream = synth.stream(produce)
        first = await stream.__anext__()
        assert first.audio[0] == 0
        assert synth.in_flight == 1
        # admitted: one running + one queued; a third is refused
        queued = synth.stream(produce)
        third = synth.stream(produce)
        queued_first = asyncio.ensure_future(queued.__anext__())
        await asyncio.sleep(0.05)
        assert synth.in_flight == 2
        with pytest.raises(Overloaded):
            await third.__anext__()
        await stream.aclose()  # the client went away
        assert seen[0].is_set()
        assert (await queued_first).audio[0] == 0  # the queued one got the worker
        await queued.aclose()
        await wait_for(lambda: synth.in_flight == 0)

    try:
        asyncio.run(main())
    finally:
        synth.shutdown()
    assert len(steps) < 1000


def test_stream_raises_the_workers_error_and_frees_the_slot() -> None:
    synth = Synthesizer(max_concurrent=1, max_queued=0)

    def produce(cancel: threading.Event) -> Iterator[AudioChunk]:
        yield chunk(1)
        raise ValueError("broken")

    async def main() -> list[float]:
        got = []
        with pytest.raises(ValueError, match="broken"):
            async for c in synth.stream(produce):
                got.append(float(c.audio[0]))
        await wait_for(lambda: synth.in_flight == 0)
        return got

    try:
        assert asyncio.run(main()) == [1.0]
    finally:
        synth.shutdown()
