"""The model's hyper-parameters, read from the release's `config.json`.

`ModelArgs` sizes the network (what `model_args` in config.json holds); `InferenceDefaults` holds the
sampling and cloning defaults that config.json carries at its top level. Both are frozen: a loaded
model never changes shape.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from xtts_server.errors import ModelLoadError


@dataclass(frozen=True)
class ModelArgs:
    """Sizes of the XTTS v2 network. Defaults are the released model's."""

    gpt_layers: int = 30
    gpt_n_model_channels: int = 1024  # width of the GPT and of the conditioning encoder
    gpt_n_heads: int = 16
    gpt_max_audio_tokens: int = 605
    gpt_max_text_tokens: int = 402
    gpt_max_prompt_tokens: int = 70
    gpt_number_text_tokens: int = 6681  # overwritten from the vocab at load: max id + 1
    gpt_start_text_token: int = 261  # overwritten from the vocab: id of [START]
    gpt_stop_text_token: int = 0  # overwritten from the vocab: id of [STOP]
    gpt_num_audio_tokens: int = 1026  # 1024 codes + start + stop
    gpt_start_audio_token: int = 1024
    gpt_stop_audio_token: int = 1025
    gpt_code_stride_len: int = 1024  # samples at 22.05 kHz per audio token
    gpt_use_perceiver_resampler: bool = True  # the "v2" in XTTS v2
    input_sample_rate: int = 22050
    output_sample_rate: int = 24000
    output_hop_length: int = 256
    decoder_input_dim: int = 1024
    d_vector_dim: int = 512  # speaker embedding width
    cond_d_vector_in_each_upsampling_layer: bool = True

    # Positions: the text table holds [START] + 402 tokens + [STOP]; the mel table holds the start
    # token, up to 605 codes, stop and one conditioning slot (the release's arithmetic, gpt.py).
    @property
    def text_positions(self) -> int:
        return self.gpt_max_text_tokens + 2

    @property
    def mel_positions(self) -> int:
        return self.gpt_max_audio_tokens + 2 + 1

    @property
    def max_gen_audio_tokens(self) -> int:
        """Most audio tokens one sentence may generate (602 in the release)."""
        return self.gpt_max_audio_tokens - 1 - 2

    @property
    def head_dim(self) -> int:
        return self.gpt_n_model_channels // self.gpt_n_heads

    @property
    def cond_latents(self) -> int:
        """Number of conditioning vectors the perceiver puts before the text (32)."""
        return 32

    def validate(self) -> None:
        if self.gpt_n_model_channels % self.gpt_n_heads:
            raise ModelLoadError(
                f"config.json: gpt_n_model_channels ({self.gpt_n_model_channels}) is not divisible by "
                f"gpt_n_heads ({self.gpt_n_heads})"
            )
        if not self.gpt_use_perceiver_resampler:
            raise ModelLoadError(
                "config.json: gpt_use_perceiver_resampler is false; that is an XTTS v1 model, "
                "and only XTTS v2 is supported"
            )
        if self.decoder_input_dim != self.gpt_n_model_channels:
            raise ModelLoadError(
                f"config.json: decoder_input_dim ({self.decoder_input_dim}) must equal "
                f"gpt_n_model_channels ({self.gpt_n_model_channels})"
            )


@dataclass(frozen=True)
class InferenceDefaults:
    """Sampling and cloning defaults from the top level of config.json (the release's values)."""

    temperature: float = 0.75
    length_penalty: float = 1.0
    repetition_penalty: float = 5.0
    top_k: int = 50
    top_p: float = 0.85
    gpt_cond_len: int = 30  # seconds of reference audio used for the GPT conditioning
    gpt_cond_chunk_len: int = 4  # seconds per chunk averaged into the conditioning
    max_ref_len: int = 30  # seconds of each reference clip used at all
    sound_norm_refs: bool = False


RELEASE_LANGUAGES = (
    "en", "es", "fr", "de", "it", "pt", "pl", "tr", "ru", "nl", "cs", "ar", "zh-cn", "hu", "ko", "ja", "hi",
)  # fmt: skip


@dataclass(frozen=True)
class ModelConfig:
    args: ModelArgs = field(default_factory=ModelArgs)
    defaults: InferenceDefaults = field(default_factory=InferenceDefaults)
    languages: tuple[str, ...] = RELEASE_LANGUAGES

    @classmethod
    def from_dict(cls, config: dict[str, Any]) -> ModelConfig:
        """Build from a parsed config.json (or the config dict pickled inside model.pth)."""
        if not isinstance(config, dict):
            raise ModelLoadError("config.json: expected a JSON object at the top level")
        model_args = config.get("model_args", {})
        if not isinstance(model_args, dict):
            raise ModelLoadError("config.json: 'model_args' must be an object")
        args = ModelArgs(**_pick(ModelArgs, model_args, "model_args"))
        defaults = InferenceDefaults(**_pick(InferenceDefaults, config, ""))
        languages = config.get("languages") or RELEASE_LANGUAGES
        return cls(args=args, defaults=defaults, languages=tuple(str(x) for x in languages))

    def to_dict(self) -> dict[str, Any]:
        """The config.json layout (the subset this project reads, plus the release's other fields)."""
        out: dict[str, Any] = {"model": "xtts", "model_args": dataclasses.asdict(self.args)}
        out.update(dataclasses.asdict(self.defaults))
        out["languages"] = list(self.languages)
        out["audio"] = {
            "sample_rate": self.args.input_sample_rate,
            "output_sample_rate": self.args.output_sample_rate,
        }
        return out


def _pick(cls: type, source: dict[str, Any], where: str) -> dict[str, Any]:
    """The fields of dataclass `cls` present in `source`, type-checked; unknown keys are ignored
    (config.json holds many training-only fields)."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in source or source[f.name] is None:
            continue  # the release leaves e.g. gpt_start_text_token null: the vocab sets it
        value = source[f.name]
        want = f.type if isinstance(f.type, str) else f.type.__name__
        ok = (
            (want == "bool" and isinstance(value, bool))
            or (want == "int" and isinstance(value, int) and not isinstance(value, bool))
            or (want == "float" and isinstance(value, (int, float)) and not isinstance(value, bool))
        )
        if not ok:
            name = f"{where}.{f.name}" if where else f.name
            raise ModelLoadError(f"config.json: {name} must be {want}, got {value!r}")
        out[f.name] = float(value) if want == "float" else value
    return out
