"""The public Python API: load a model, make voices, synthesize whole or streamed.

from xtts_server import XTTS
tts = XTTS.load("path/to/XTTS-v2", device="cpu")   # XTTS.load() downloads the release
voice = tts.clone_voice(["ref.wav"])
out = tts.synthesize("Hello there.", "en", voice)
for chunk in tts.stream("Hello there.", "en", voice): ...
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from xtts_server.errors import InvalidRequest, InvalidText, VoiceNotFound
from xtts_server.inference.generation import Step, generate
from xtts_server.inference.sampling import SamplingParams
from xtts_server.inference.vocoder_stream import StreamingVocoder
from xtts_server.inference.voice import ClipSource, CloneOptions, Voice, clone_voice
from xtts_server.model.loader import LoadedModel, load_model_dir
from xtts_server.text.languages import char_limit, normalize_language

logger = logging.getLogger(__name__)

SAMPLE_RATE = 24000  # the vocoder's output rate


@dataclass(frozen=True)
class SynthesisResult:
    audio: np.ndarray  # float32 [N] in [-1, 1] at `sample_rate`
    sample_rate: int
    codes: list[list[int]]  # per sentence: the generated audio codes, without the stop code
    language: str  # the language used (the detected one when "auto" was asked)


@dataclass(frozen=True)
class AudioChunk:
    audio: np.ndarray  # float32 [n] at `sample_rate`; may be empty on a sentence's last chunk
    sample_rate: int
    sentence: int  # index of the sentence this audio belongs to
    text: str  # that sentence
    is_last: bool  # the last chunk of the whole request
    language: str


@dataclass(frozen=True)
class GenerationOptions:
    """Per-request knobs. `None` means config.json's default (or the model's limit)."""

    temperature: float | None = None
    top_k: int | None = None
    top_p: float | None = None
    repetition_penalty: float | None = None
    length_penalty: float | None = None
    do_sample: bool = True
    speed: float = 1.0
    seed: int | None = None
    max_new_tokens: int | None = None  # audio tokens per sentence (at most 602 in the release)
    min_new_tokens: int = 0


def resolve_device(device: str | torch.device) -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class XTTS:
    def __init__(self, loaded: LoadedModel, device: torch.device) -> None:
        self.loaded = loaded
        self.model = loaded.model
        self.tokenizer = loaded.tokenizer
        self.config = loaded.config
        self.device = device
        self.sample_rate = SAMPLE_RATE

    @classmethod
    def load(
        cls,
        model_dir: str | Path | None = None,
        *,
        device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float32,
        accept_license: bool = False,
        cache_dir: str | Path | None = None,
    ) -> XTTS:
        """Load a model directory; with none, download coqui/XTTS-v2 (after the license is accepted)."""
        if model_dir is None:
            from xtts_server.hub import download_release

            model_dir = download_release(accept_license=accept_license, cache_dir=cache_dir)
        dev = resolve_device(device)
        return cls(load_model_dir(model_dir, dev, dtype), dev)

    # --- text -------------------------------------------------------------------------------------

    @property
    def languages(self) -> tuple[str, ...]:
        return self.config.languages

    def resolve_language(self, language: str, text: str) -> str:
        if language == "auto":
            from xtts_server.text.detect import detect_language

            return detect_language(text)
        return normalize_language(language)

    def tokenize(self, text: str, language: str) -> list[int]:
        """The text ids the model receives for this text (normalised as the reference does)."""
        return self.tokenizer.encode(text, normalize_language(language))

    def sentences(self, text: str, language: str) -> list[str]:
        """The text as the chunks synthesized one after another: whole when it fits the language's
        limit, else cut at sentence boundaries."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidText("text is empty: give at least one word to speak")
        text = text.strip()
        if len(text) <= char_limit(language):
            return [text]
        from xtts_server.text.split import split_sentences

        return [s for s in split_sentences(text, language) if s.strip()]

    def _text_ids(self, sentence: str, language: str) -> torch.Tensor:
        ids = self.tokenizer.encode(sentence, language)
        limit = self.config.args.gpt_max_text_tokens
        if len(ids) >= limit:
            raise InvalidText(
                f"a sentence is too long for the model: {len(ids)} text tokens, the limit is {limit - 1}; "
                f"split it into shorter sentences"
            )
        return torch.tensor([ids], dtype=torch.long, device=self.device)

    # --- voices -----------------------------------------------------------------------------------

    def clone_voice(
        self,
        clips: ClipSource | Sequence[ClipSource],
        *,
        sample_rate: int | None = None,
        gpt_cond_len: int | None = None,
        gpt_cond_chunk_len: int | None = None,
        max_ref_len: int | None = None,
        sound_norm_refs: bool | None = None,
    ) -> Voice:
        """A voice from one or more clips (paths, encoded bytes, file objects, or arrays with
        `sample_rate`). Defaults come from config.json."""
        if isinstance(clips, (str, Path, bytes, np.ndarray, torch.Tensor)) or hasattr(clips, "read"):
            clips = [clips]  # type: ignore[list-item]
        d = self.config.defaults
        options = CloneOptions(
            gpt_cond_len=gpt_cond_len if gpt_cond_len is not None else d.gpt_cond_len,
            gpt_cond_chunk_len=gpt_cond_chunk_len if gpt_cond_chunk_len is not None else d.gpt_cond_chunk_len,
            max_ref_len=max_ref_len if max_ref_len is not None else d.max_ref_len,
            sound_norm_refs=sound_norm_refs if sound_norm_refs is not None else d.sound_norm_refs,
        )
        return clone_voice(self.model, list(clips), options, source_sample_rate=sample_rate)  # type: ignore[arg-type]

    @property
    def studio_voices(self) -> list[str]:
        return sorted(self.loaded.speakers)

    def studio_voice(self, name: str) -> Voice:
        entry = self.loaded.speakers.get(name)
        if entry is None:
            known = ", ".join(self.studio_voices[:10]) or "none in this model"
            raise VoiceNotFound(f"no studio voice named {name!r}; studio voices: {known}")
        return Voice(entry["gpt_cond_latent"], entry["speaker_embedding"]).to(self.device)

    # --- synthesis --------------------------------------------------------------------------------

    @property
    def _decoder_dtype(self) -> torch.dtype:
        return self.model.hifigan_decoder.waveform_decoder.conv_pre.weight.dtype

    def _sampling(self, options: GenerationOptions) -> tuple[SamplingParams, int, torch.Generator | None]:
        d = self.config.defaults
        params = SamplingParams(
            temperature=options.temperature if options.temperature is not None else d.temperature,
            top_k=options.top_k if options.top_k is not None else d.top_k,
            top_p=options.top_p if options.top_p is not None else d.top_p,
            repetition_penalty=(
                options.repetition_penalty if options.repetition_penalty is not None else d.repetition_penalty
            ),
            length_penalty=options.length_penalty if options.length_penalty is not None else d.length_penalty,
            do_sample=options.do_sample,
        )
        params.validate()
        limit = self.config.args.max_gen_audio_tokens
        max_new = options.max_new_tokens if options.max_new_tokens is not None else limit
        if not 1 <= max_new <= limit:
            raise InvalidRequest(f"max_new_tokens must be between 1 and {limit}, got {max_new}")
        if not 0 <= options.min_new_tokens <= max_new:
            raise InvalidRequest(f"min_new_tokens must be between 0 and max_new_tokens ({max_new})")
        if not 0.05 <= options.speed <= 10:
            raise InvalidRequest(f"speed must be between 0.05 and 10, got {options.speed}")
        generator = None
        if options.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(options.seed)
        return params, max_new, generator

    def _steps(
        self,
        sentence: str,
        language: str,
        voice: Voice,
        options: GenerationOptions,
        sampling: tuple[SamplingParams, int, torch.Generator | None],
        cancel: threading.Event | None,
    ) -> Iterator[Step]:
        params, max_new, generator = sampling
        gpt = self.model.gpt
        dtype = gpt.text_embedding.weight.dtype
        prompt = gpt.prompt(voice.gpt_cond_latent.to(self.device, dtype), self._text_ids(sentence, language))
        return generate(
            gpt,
            prompt,
            params,
            max_new_tokens=max_new,
            min_new_tokens=options.min_new_tokens,
            generator=generator,
            cancel=cancel,
        )

    @torch.inference_mode()
    def synthesize(
        self,
        text: str,
        language: str,
        voice: Voice,
        *,
        cancel: threading.Event | None = None,
        **kwargs: object,
    ) -> SynthesisResult:
        """Whole-utterance synthesis. Keyword arguments are GenerationOptions fields; setting
        `cancel` stops the work at the next decode step (raising Cancelled)."""
        options = GenerationOptions(**kwargs)  # type: ignore[arg-type]
        sampling = self._sampling(options)  # validates before any work
        language = self.resolve_language(language, text)
        g = voice.speaker_embedding.to(self.device, self._decoder_dtype)
        wavs, all_codes = [], []
        for sentence in self.sentences(text, language):
            steps = list(self._steps(sentence, language, voice, options, sampling, cancel))
            latents = torch.cat([s.latent for s in steps])[None]  # [1, N, dim]
            if options.speed != 1.0:
                latents = F.interpolate(
                    latents.transpose(1, 2), scale_factor=1.0 / max(options.speed, 0.05), mode="linear"
                ).transpose(1, 2)
            wavs.append(self.model.hifigan_decoder(latents.to(g.dtype), g).reshape(-1).float().cpu())
            all_codes.append([s.code for s in steps if not s.is_stop])
        audio = torch.cat(wavs).numpy()
        return SynthesisResult(audio=audio, sample_rate=SAMPLE_RATE, codes=all_codes, language=language)

    @torch.inference_mode()
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
        """Streamed synthesis: audio every `stream_chunk_size` tokens, sentence by sentence. The
        joined chunks equal whole synthesis of the same codes; each chunk's vocoder work is bounded.
        Setting `cancel` stops the work at the next decode step (raising Cancelled)."""
        if stream_chunk_size < 1:
            raise InvalidRequest(f"stream_chunk_size must be >= 1, got {stream_chunk_size}")
        options = GenerationOptions(**kwargs)  # type: ignore[arg-type]
        sampling = self._sampling(options)
        language = self.resolve_language(language, text)
        sentences = self.sentences(text, language)
        g = voice.speaker_embedding.to(self.device, self._decoder_dtype)
        for index, sentence in enumerate(sentences):
            vocoder = StreamingVocoder(self.model.hifigan_decoder, g, speed=options.speed)
            pending: list[torch.Tensor] = []
            last_sentence = index == len(sentences) - 1
            for step in self._steps(sentence, language, voice, options, sampling, cancel):
                pending.append(step.latent)
                if len(pending) >= stream_chunk_size:
                    audio = vocoder.push(torch.cat(pending))
                    pending = []
                    if audio.numel():
                        yield AudioChunk(audio.cpu().numpy(), SAMPLE_RATE, index, sentence, False, language)
            tail = [vocoder.push(torch.cat(pending))] if pending else []
            audio = torch.cat([*tail, vocoder.finish()])
            yield AudioChunk(audio.cpu().numpy(), SAMPLE_RATE, index, sentence, last_sentence, language)


__all__ = ["XTTS", "AudioChunk", "GenerationOptions", "SynthesisResult", "Voice"]
