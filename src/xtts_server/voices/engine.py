"""Connecting a VoiceStore to a loaded `XTTS`: its signature, its studio voices, and a store for both."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from xtts_server.inference.voice import Voice
from xtts_server.voices.info import ModelSignature
from xtts_server.voices.store import VoiceStore

if TYPE_CHECKING:
    from xtts_server.tts import XTTS

HASH_FILE = "hash.md5"  # the release ships the md5 of model.pth


def model_signature(tts: XTTS) -> ModelSignature:
    """Shapes from the model's config; fingerprint "xtts-v2 width=<W>", plus " md5=<hash>" when the
    model directory has the release's hash.md5."""
    args = tts.config.args
    fingerprint = f"xtts-v2 width={args.gpt_n_model_channels}"
    hash_file = Path(tts.loaded.model_dir) / HASH_FILE
    try:
        digest = hash_file.read_text(encoding="ascii", errors="replace").split()[0].lower()
        if re.fullmatch(r"[0-9a-f]{32}", digest):
            fingerprint += f" md5={digest}"
    except (OSError, IndexError):
        pass
    return ModelSignature(
        fingerprint=fingerprint,
        latent_shape=(1, args.cond_latents, args.gpt_n_model_channels),
        speaker_shape=(1, args.d_vector_dim, 1),
    )


class StudioVoices(Mapping[str, Voice]):
    """The model's studio voices by name, read from the model only when one is asked for."""

    def __init__(self, tts: XTTS) -> None:
        self._tts = tts
        self._names = tuple(tts.studio_voices)

    def __getitem__(self, name: str) -> Voice:
        if name not in self._names:
            raise KeyError(name)
        return self._tts.studio_voice(name)

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def open_store(tts: XTTS, directory: str | os.PathLike[str]) -> VoiceStore:
    """The store a server uses: stored voices in `directory`, studio voices built in, tensors on the
    model's device."""
    return VoiceStore(directory, builtin=StudioVoices(tts), signature=model_signature(tts), device=tts.device)
