"""Drive pipecat's own XTTSService (pipecat-ai, not a dependency of ours) against a running server.

pipecat pulls in numba, onnxruntime and more, so it lives in a venv of its own (tests/server/
test_pipecat_compat.py builds one in .venv-pipecat/ and runs this script against a live server):
    python -m venv .venv-pipecat && .venv-pipecat/bin/pip install pipecat-ai==1.14.0
    xtts-server serve ... &   # any server with studio voices
    .venv-pipecat/bin/python scripts/compat/pipecat_xtts.py http://127.0.0.1:8000 "Ana Florence"
Prints one JSON object: the studio speakers the service fetched, the audio frames it yielded (count,
bytes, sample rates, channels) and its error frames; exits 1 on an ErrorFrame or no audio.
`--language sv` asks for a language XTTS does not speak (the server's refusal reaches pipecat as an
ErrorFrame). Checked with pipecat-ai 1.14.0 on the tiny model (XTTS_MAX_NEW_TOKENS=40).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

import aiohttp
from pipecat.clocks.system_clock import SystemClock
from pipecat.frames.frames import EndFrame, ErrorFrame, StartFrame, TTSAudioRawFrame
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.xtts.tts import XTTSService
from pipecat.transcriptions.language import Language
from pipecat.utils.asyncio.task_manager import TaskManager

TEXT = "Hello there. *Nice* to meet you."


async def run(url: str, voice: str, language: str, sample_rate: int) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        service = XTTSService(
            voice_id=voice,
            base_url=url,
            aiohttp_session=session,
            language=Language(language),
            sample_rate=sample_rate,
        )
        # A pipeline would do this: a task manager and clock, then start(), where the service fetches
        # GET /studio_speakers; no transport or other processors are needed for run_tts.
        tasks = TaskManager(loop=asyncio.get_running_loop())
        await service.setup(
            FrameProcessorSetup(clock=SystemClock(), task_manager=tasks, pipeline_worker=None)
        )
        await service.start(StartFrame(audio_out_sample_rate=sample_rate))
        frames: list[TTSAudioRawFrame] = []
        errors: list[str] = []
        async for frame in service.run_tts(TEXT, "ctx-1"):
            if isinstance(frame, TTSAudioRawFrame):
                frames.append(frame)
            elif isinstance(frame, ErrorFrame):
                errors.append(frame.error)
        await service.stop(EndFrame())
        await service.cleanup()
        return {
            "studio_speakers": sorted(service._studio_speakers or {}),
            "frames": len(frames),
            "audio_bytes": sum(len(f.audio) for f in frames),
            "sample_rates": sorted({f.sample_rate for f in frames}),
            "channels": sorted({f.num_channels for f in frames}),
            "errors": errors,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="the server's base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("voice", help="a studio speaker's name")
    parser.add_argument("--language", default="en", help="a pipecat Language value (default en)")
    parser.add_argument("--sample-rate", type=int, default=24000, help="the service's output rate")
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.voice, args.language, args.sample_rate))
    print(json.dumps(result))
    return 0 if result["audio_bytes"] > 0 and not result["errors"] else 1


if __name__ == "__main__":
    sys.exit(main())
