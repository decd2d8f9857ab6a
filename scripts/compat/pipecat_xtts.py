"""Drive pipecat's own XTTSService (pipecat-ai, not a dependency of ours) against a running server.

pipecat pulls in numba, onnxruntime and more, so it lives in a venv of its own:
    python -m venv /tmp/pcvenv && /tmp/pcvenv/bin/pip install pipecat-ai
    xtts-server serve ... &   # any server with studio voices
    /tmp/pcvenv/bin/python scripts/compat/pipecat_xtts.py http://127.0.0.1:8000 "Ana Florence"
Prints what the service yielded; exits 1 on an ErrorFrame or no audio. Checked with pipecat-ai 1.14.0
on the tiny model (XTTS_MAX_NEW_TOKENS=40): 4 studio speakers, 89088 bytes of 24 kHz audio, no errors.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import EndFrame, ErrorFrame, StartFrame, TTSAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.xtts.tts import XTTSService
from pipecat.utils.asyncio.task_manager import TaskManager


async def main(url: str, voice: str) -> int:
    async with aiohttp.ClientSession() as session:
        service = XTTSService(voice_id=voice, base_url=url, aiohttp_session=session, sample_rate=24000)
        # A pipeline would do this: a task manager and clock, then start(), where the service fetches
        # GET /studio_speakers; no transport or other processors are needed for run_tts.
        tasks = TaskManager(loop=asyncio.get_running_loop())
        await service.setup(
            FrameProcessorSetup(clock=SystemClock(), task_manager=tasks, pipeline_worker=None)
        )
        await service.start(StartFrame(audio_out_sample_rate=24000))
        audio, errors = 0, []
        async for frame in service.run_tts("Hello there. *Nice* to meet you.", "ctx-1"):
            if isinstance(frame, TTSAudioRawFrame):
                assert frame.sample_rate == 24000 and frame.num_channels == 1
                audio += len(frame.audio)
            elif isinstance(frame, ErrorFrame):
                errors.append(frame.error)
        await service.stop(EndFrame())
        await service.cleanup()
        print(
            f"studio speakers: {len(service._studio_speakers or {})}; audio bytes: {audio}; errors: {errors}"
        )
        return 0 if audio > 0 and not errors else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
