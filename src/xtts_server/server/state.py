"""What the server holds while it runs: settings, the model (once loaded), voices, the synthesizer."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import AsyncGenerator, Callable, Iterator
from dataclasses import dataclass

import torch

from xtts_server.engine import Engine, EngineConfig
from xtts_server.engine.stream import EngineTTS
from xtts_server.errors import XTTSError
from xtts_server.inference.voice import Voice
from xtts_server.server.errors import NotReady, PayloadTooLarge
from xtts_server.server.settings import Settings
from xtts_server.server.synthesis import Synthesizer
from xtts_server.tts import XTTS, AudioChunk, resolve_device
from xtts_server.voices.engine import open_store
from xtts_server.voices.importer import import_folder
from xtts_server.voices.store import VoiceStore

logger = logging.getLogger(__name__)

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


@dataclass(frozen=True)
class SpeakRequest:
    """One synthesis, validated at the edge."""

    text: str
    language: str
    voice: str | Voice | None  # a name, or latents sent with the request (used once, not stored)
    options: dict[str, object]  # GenerationOptions fields
    stream_chunk_size: int = 20


class ServerState:
    def __init__(self, settings: Settings, tts: XTTS | None = None) -> None:
        self.settings = settings
        device = tts.device if tts is not None else resolve_device(settings.device)
        # The batching engine on a GPU (one loop decodes every stream together); on a CPU, each
        # synthesis runs on its own in a worker thread.
        self.use_engine = settings.engine == "on" or (settings.engine == "auto" and device.type == "cuda")
        self.engine: Engine | None = None
        # With the engine, worker threads only wait on its output queues: one per slot.
        workers = settings.engine_slots if self.use_engine else settings.max_concurrent
        self.synth = Synthesizer(workers, settings.max_queued)
        self._tts = tts
        self._voices: VoiceStore | None = None
        self.ready = False
        self.load_error: str | None = None
        self.started = time.time()

    # --- start-up ---------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the model, open the voice store, import the speakers folder, warm up; then ready."""
        try:
            await asyncio.to_thread(self._start_blocking)
        except Exception as e:  # reported by /ready; the process stays up for /health and logs
            self.load_error = str(e) if isinstance(e, XTTSError) else f"{type(e).__name__}: {e}"
            logger.error("start-up failed: %s", self.load_error, exc_info=not isinstance(e, XTTSError))
            return
        self.ready = True
        logger.info("ready: %d voices, %s", len(self.voices.list()), self.tts.device)

    def _start_blocking(self) -> None:
        s = self.settings
        if self._tts is None:
            device = resolve_device(s.device)
            dtype = s.dtype if s.dtype != "auto" else ("float16" if device.type == "cuda" else "float32")
            self._tts = XTTS.load(
                s.model_dir, device=device, dtype=DTYPES[dtype], accept_license=s.accept_license
            )
        tts = self._tts
        if self.use_engine:
            config = EngineConfig(
                slots=s.engine_slots,
                max_waiting=s.max_queued,
                max_new_tokens=s.max_new_tokens,
                fused_batches=s.engine_fused_batches,
            )
            self.engine = Engine(tts.model, tts.device, config)
            started = time.perf_counter()
            self.engine.start()
            logger.info("engine: %d slots, started in %.1f s", s.engine_slots, time.perf_counter() - started)
        self._voices = open_store(tts, s.voices_dir)
        if s.speakers_dir is not None:
            import_folder(self._voices, s.speakers_dir, lambda clips: tts.clone_voice(clips))
        if s.warmup:
            started = time.perf_counter()
            studio = tts.studio_voices
            voice = tts.studio_voice(studio[0]) if studio else None
            if voice is not None:
                for _ in self._streamer(tts)("Warm up.", "en", voice, seed=0, max_new_tokens=8):
                    pass
            logger.info("warm-up took %.2f s", time.perf_counter() - started)

    def _streamer(self, tts: XTTS) -> Callable[..., Iterator[AudioChunk]]:
        """XTTS.stream, or the engine's equivalent."""
        return EngineTTS(tts, self.engine).stream if self.engine is not None else tts.stream

    def shutdown(self) -> None:
        self.synth.shutdown()
        if self.engine is not None:
            self.engine.stop()

    # --- access -----------------------------------------------------------------------------------

    @property
    def tts(self) -> XTTS:
        if not self.ready or self._tts is None:
            raise NotReady(
                (self.load_error and f"the model failed to load: {self.load_error}") or "the model is loading"
            )
        if self.engine is not None and self.engine.dead is not None:
            raise NotReady(f"the engine stopped after an internal error: {self.engine.dead}")
        return self._tts

    @property
    def voices(self) -> VoiceStore:
        if self._voices is None:
            raise NotReady("the model is loading")
        return self._voices

    def voice(self, name: str | Voice | None) -> Voice:
        if isinstance(name, Voice):
            return name.to(self.tts.device)
        name = name or self.settings.default_voice
        if not name:
            from xtts_server.errors import InvalidRequest

            raise InvalidRequest("no voice given: name a voice (GET /v1/voices lists them)")
        return self.voices.get(name)

    # --- synthesis --------------------------------------------------------------------------------

    def check_text(self, text: str) -> None:
        if len(text) > self.settings.max_text_chars:
            raise PayloadTooLarge(
                f"text is {len(text)} characters; this server accepts at most {self.settings.max_text_chars}"
            )

    async def speak(self, req: SpeakRequest) -> tuple[AudioChunk, AsyncGenerator[AudioChunk, None]]:
        """Start a synthesis and wait for its first chunk, so that any error in the request (bad
        voice, language, options, text) is raised before a response starts. Returns the first chunk
        and an iterator over the rest."""
        self.check_text(req.text)
        tts = self.tts
        voice = self.voice(req.voice)
        options = dict(req.options)
        cap = self.settings.max_new_tokens
        requested = options.get("max_new_tokens")
        options["max_new_tokens"] = min(cap, requested) if isinstance(requested, int) else cap

        if self.engine is not None:
            engine_tts = EngineTTS(tts, self.engine)
            chunks = self.synth.relay(
                engine_tts.astream(
                    req.text, req.language, voice, stream_chunk_size=req.stream_chunk_size, **options
                )
            )
        else:

            def produce(cancel: threading.Event) -> Iterator[AudioChunk]:
                return tts.stream(
                    req.text,
                    req.language,
                    voice,
                    stream_chunk_size=req.stream_chunk_size,
                    cancel=cancel,
                    **options,
                )

            chunks = self.synth.stream(produce)
        try:
            first = await chunks.__anext__()
        except BaseException:
            await chunks.aclose()
            raise
        return first, chunks
