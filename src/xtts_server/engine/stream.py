"""`XTTS.stream`'s contract on top of the engine: same arguments, same chunks, many callers at once.

The caller's thread validates and splits the text (exactly as `XTTS.stream`), then submits one
engine request per sentence, the next when the previous one ends, and blocks on a queue that the
engine thread fills. A set `cancel` event cancels the request in flight within one poll interval;
the engine frees its row at its next step.
"""

from __future__ import annotations

import asyncio
import queue
import secrets
import threading
from collections.abc import AsyncGenerator, Iterator

from xtts_server.engine.engine import AudioOut, Engine, EngineRequest
from xtts_server.errors import Cancelled, InvalidRequest
from xtts_server.inference.voice import Voice
from xtts_server.tts import XTTS, AudioChunk, GenerationOptions

POLL_S = 0.02  # how often a waiting caller looks at its cancel event
# Text up to this long, in a named language, is validated and split on the event loop itself: on a
# 2-core CPU 0.2 ms for 86 characters, against ~0.9 ms of the loop's time for the hop to a worker
# thread (bench/http_overhead.py under py-spy).
INLINE_PREPARE_CHARS = 200


class EngineTTS:
    def __init__(self, tts: XTTS, engine: Engine) -> None:
        self.tts = tts
        self.engine = engine

    def _prepare(
        self, text: str, language: str, voice: Voice, stream_chunk_size: int, kwargs: dict[str, object]
    ) -> tuple[list[str], list[EngineRequest], str]:
        """Validate and split exactly as XTTS.stream; one (unsubmitted) request per sentence."""
        if stream_chunk_size < 1:
            raise InvalidRequest(f"stream_chunk_size must be >= 1, got {stream_chunk_size}")
        options = GenerationOptions(**kwargs)  # type: ignore[arg-type]
        params, max_new, _ = self.tts._sampling(options)
        language = self.tts.resolve_language(language, text)
        sentences = self.tts.sentences(text, language)
        # The engine's draws depend only on (seed, step): without a seed, each sentence gets a fresh one.
        base_seed = options.seed if options.seed is not None else secrets.randbits(32)
        requests = [
            EngineRequest(
                text_ids=self.tts.tokenize(sentence, language),
                gpt_cond_latent=voice.gpt_cond_latent,
                speaker_embedding=voice.speaker_embedding,
                params=params,
                on_output=lambda out: None,  # set by the caller
                seed=base_seed + index,
                max_new_tokens=max_new,
                min_new_tokens=options.min_new_tokens,
                stream_chunk_size=stream_chunk_size,
                speed=options.speed,
            )
            for index, sentence in enumerate(sentences)
        ]
        return sentences, requests, language

    def stream(
        self,
        text: str,
        language: str,
        voice: Voice,
        *,
        stream_chunk_size: int = 20,
        cancel: threading.Event | None = None,
        **kwargs: object,
    ) -> Iterator[AudioChunk]:
        """XTTS.stream, from a thread that may block."""
        sentences, requests, language = self._prepare(text, language, voice, stream_chunk_size, kwargs)
        rate = self.tts.sample_rate
        for index, (sentence, req) in enumerate(zip(sentences, requests, strict=True)):
            outputs: queue.Queue[AudioOut] = queue.Queue()
            req.on_output = outputs.put
            self.engine.submit(req)
            last_sentence = index == len(sentences) - 1
            try:
                while True:
                    if cancel is not None and cancel.is_set():
                        raise Cancelled()
                    try:
                        out = outputs.get(timeout=POLL_S)
                    except queue.Empty:
                        continue
                    if out.error is not None:
                        raise out.error
                    yield AudioChunk(out.audio, rate, index, sentence, out.done and last_sentence, language)
                    if out.done:
                        break
            finally:
                req.cancel()  # no-op once it ended; frees the row when the consumer left early

    async def astream(
        self, text: str, language: str, voice: Voice, *, stream_chunk_size: int = 20, **kwargs: object
    ) -> AsyncGenerator[AudioChunk, None]:
        """XTTS.stream for an event loop: no thread per stream, the engine hands each output to the
        loop. Closing the generator (the client went away) cancels the sentence in flight."""
        loop = asyncio.get_running_loop()
        if len(text) <= INLINE_PREPARE_CHARS and language != "auto":
            # A sentence or two: preparing it costs less than handing it to a worker thread and
            # back, a cost that blocks the event loop for every other stream too.
            sentences, requests, language = self._prepare(text, language, voice, stream_chunk_size, kwargs)
        else:  # long text takes milliseconds, and "auto" may load the language model: off the loop
            sentences, requests, language = await asyncio.to_thread(
                self._prepare, text, language, voice, stream_chunk_size, kwargs
            )
        rate = self.tts.sample_rate
        for index, (sentence, req) in enumerate(zip(sentences, requests, strict=True)):
            outputs: asyncio.Queue[AudioOut] = asyncio.Queue()

            def hand_over(out: AudioOut, outputs: asyncio.Queue[AudioOut] = outputs) -> None:
                loop.call_soon_threadsafe(outputs.put_nowait, out)

            req.on_output = hand_over
            self.engine.submit(req)
            last_sentence = index == len(sentences) - 1
            try:
                while True:
                    out = await outputs.get()
                    if out.error is not None:
                        raise out.error
                    yield AudioChunk(out.audio, rate, index, sentence, out.done and last_sentence, language)
                    if out.done:
                        break
            finally:
                req.cancel()
