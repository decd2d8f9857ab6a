"""Reading the released checkpoint files safely and mapping their keys onto our modules.

`model.pth` is a torch zip archive whose pickle also holds Coqui config *objects*. We read it with
torch's weights-only unpickler, where those four classes are stood in for by an inert stub: no code
from the file is ever executed, and any other class in it is refused.

Key mapping, applied once at load (gpt-fast style, so the file format does not dictate our layout):
- a leading `xtts.` (trainer checkpoints) is stripped;
- DVAE and training-only mel modules, the unused text head and GPT-2's stale causal-mask buffers are
  dropped; `gpt.gpt_inference.*` and `gpt.gpt.wte` are aliases of other tensors, used only if the
  canonical key is missing;
- weight norm (both `parametrizations.weight.original0/1` and `weight_g/weight_v`) is folded into a
  plain weight;
- GPT-2's Conv1D weights ([in, out]) are transposed to nn.Linear ([out, in]);
- a few modules are renamed (see `_RENAMES`).
"""

from __future__ import annotations

import logging
import pickle
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import torch

from xtts_server.errors import ModelLoadError

logger = logging.getLogger(__name__)

# The Coqui config classes the release pickles into model.pth (and the module paths they were saved
# under, old and new).
CONFIG_CLASS_NAMES = (
    "TTS.tts.configs.xtts_config.XttsConfig",
    "TTS.tts.models.xtts.XttsArgs",
    "TTS.tts.models.xtts.XttsAudioConfig",
    "TTS.tts.configs.xtts_config.XttsArgs",
    "TTS.tts.configs.xtts_config.XttsAudioConfig",
    "TTS.config.shared_configs.BaseDatasetConfig",
)


class PickledConfig:
    """Inert stand-in for a pickled Coqui config object: it only keeps the attributes it was given."""

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 2:  # (dict, slots) form
            state = {**(state[0] or {}), **(state[1] or {})}
        self.__dict__["_state"] = state if isinstance(state, dict) else {}


def _plain(obj: Any) -> Any:
    """Turn stubs (and containers of them) into plain dicts and lists."""
    if isinstance(obj, PickledConfig):
        return {k: _plain(v) for k, v in obj.__dict__.get("_state", {}).items()}
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def _safe_load(path: Path, what: str, *, mmap: bool) -> Any:
    """torch.load with weights_only and the config stubs; every failure becomes a ModelLoadError."""
    stubs: list[Any] = [(PickledConfig, name) for name in CONFIG_CLASS_NAMES]
    try:
        with torch.serialization.safe_globals(stubs):
            return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as e:
        # weights_only refuses unknown globals before anything is called: nothing was executed.
        raise ModelLoadError(
            f"{what} ({path}) holds a pickled object this loader does not allow, so it was not loaded "
            f"and no code from it was run. Only tensors, plain containers and the Coqui XTTS config "
            f"classes are accepted. Details: {_first_line(e)}"
        ) from e
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as e:
        raise ModelLoadError(
            f"{what} ({path}) could not be read: it is truncated, corrupt or not a PyTorch checkpoint "
            f"({_first_line(e)}). Download it again."
        ) from e


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def read_model_file(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any] | None]:
    """Read model.pth -> (raw state_dict, the config pickled inside it as a dict, or None).

    Tensors are memory-mapped where the file allows it, so loading does not hold a second copy."""
    if not path.is_file():
        raise ModelLoadError(f"model.pth not found: {path}")
    try:
        data = _safe_load(path, "model.pth", mmap=True)
    except ModelLoadError as e:
        if not isinstance(e.__cause__, RuntimeError) or "mmap" not in str(e.__cause__):
            raise
        data = _safe_load(path, "model.pth", mmap=False)  # legacy (non-zip) format: no mmap
    if isinstance(data, Mapping) and "model" in data:
        state, config = data["model"], data.get("config")
    else:
        state, config = data, None
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ModelLoadError(f"model.pth ({path}) does not hold a state_dict of tensors under 'model'")
    cfg = _plain(config) if config is not None else None
    return dict(state), cfg if isinstance(cfg, dict) else None


def read_speakers_file(path: Path) -> dict[str, dict[str, torch.Tensor]]:
    """speakers_xtts.pth: name -> {"gpt_cond_latent": [1, 32, C], "speaker_embedding": [1, 512, 1]}."""
    data = _safe_load(path, "speakers_xtts.pth", mmap=False)
    if not isinstance(data, Mapping):
        raise ModelLoadError(f"speakers_xtts.pth ({path}) must hold a dict of voices")
    voices: dict[str, dict[str, torch.Tensor]] = {}
    for name, entry in data.items():
        if not (
            isinstance(name, str)
            and isinstance(entry, Mapping)
            and isinstance(entry.get("gpt_cond_latent"), torch.Tensor)
            and isinstance(entry.get("speaker_embedding"), torch.Tensor)
        ):
            raise ModelLoadError(
                f"speakers_xtts.pth ({path}): entry {name!r} must map to gpt_cond_latent and "
                f"speaker_embedding tensors"
            )
        voices[name] = {
            "gpt_cond_latent": entry["gpt_cond_latent"],
            "speaker_embedding": entry["speaker_embedding"],
        }
    return voices


# --- key mapping ------------------------------------------------------------------------------------

_DROP_PREFIXES = (
    "dvae.",
    "torch_mel_spectrogram_style_encoder.",
    "torch_mel_spectrogram_dvae.",
    "gpt.text_head.",
)
_DROP_RE = re.compile(r"^gpt\.gpt\.h\.\d+\.attn\.(bias|masked_bias)$")  # GPT-2's old causal-mask buffers

# Aliases created by the reference's init_gpt_for_inference(): same tensors under other names.
_ALIASES = (
    ("gpt.gpt_inference.transformer.", "gpt.gpt."),
    ("gpt.gpt_inference.pos_embedding.", "gpt.mel_pos_embedding."),
    ("gpt.gpt_inference.embeddings.", "gpt.mel_embedding."),
    ("gpt.gpt_inference.final_norm.", "gpt.final_norm."),
    ("gpt.gpt_inference.lm_head.0.", "gpt.final_norm."),
    ("gpt.gpt_inference.lm_head.1.", "gpt.mel_head."),
    ("gpt.gpt.wte.", "gpt.mel_embedding."),
)

# Release name -> our name (regex, replacement), applied in order after folding.
_RENAMES = (
    (re.compile(r"^gpt\.gpt\."), "gpt.transformer."),
    (re.compile(r"^gpt\.(text|mel)_pos_embedding\.emb\."), r"gpt.\1_pos_embedding."),
    (re.compile(r"^gpt\.conditioning_perceiver\.layers\.(\d+)\.0\."), r"gpt.conditioning_perceiver.attn.\1."),
    (re.compile(r"^gpt\.conditioning_perceiver\.layers\.(\d+)\.1\."), r"gpt.conditioning_perceiver.ff.\1."),
    (re.compile(r"^gpt\.conditioning_perceiver\.norm\.gamma$"), "gpt.conditioning_perceiver.norm_gamma"),
    (re.compile(r"^hifigan_decoder\.speaker_encoder\."), "speaker_encoder."),
)

# GPT-2 Conv1D weights are stored [in, out]; ours are nn.Linear [out, in].
_CONV1D_RE = re.compile(r"^gpt\.gpt\.h\.\d+\.(attn\.c_attn|attn\.c_proj|mlp\.c_fc|mlp\.c_proj)\.weight$")

_NEVER = re.compile(r"(?!)")
_WN_NEW = (".parametrizations.weight.original0", ".parametrizations.weight.original1")
_WN_OLD = (".weight_g", ".weight_v")


def to_model_keys(raw: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Map a release state_dict onto our module names."""
    stripped = {k.removeprefix("xtts."): v for k, v in raw.items()}
    canonical: dict[str, torch.Tensor] = {}
    aliased: dict[str, torch.Tensor] = {}
    for key, value in stripped.items():
        if key.startswith(_DROP_PREFIXES) or _DROP_RE.match(key):
            continue
        for alias, target in _ALIASES:
            if key.startswith(alias):
                aliased.setdefault(target + key[len(alias) :], value)
                break
        else:
            canonical[key] = value
    for key, value in aliased.items():
        canonical.setdefault(key, value)

    mapped: dict[str, torch.Tensor] = {}
    for key, value in _fold_weight_norm(canonical):
        if _CONV1D_RE.match(key):
            value = value.t().contiguous()
        for pattern, repl in _RENAMES:
            key = pattern.sub(repl, key)
        mapped[key] = value
    return mapped


def _fold_weight_norm(state: dict[str, torch.Tensor]) -> Iterator[tuple[str, torch.Tensor]]:
    """Yield (key, tensor) with every weight-norm pair replaced by its folded `.weight`."""
    done: set[str] = set()
    for key, value in state.items():
        if key in done:
            continue
        for g_suffix, v_suffix in (_WN_NEW, _WN_OLD):
            if key.endswith(g_suffix) or key.endswith(v_suffix):
                base = key[: -len(g_suffix)] if key.endswith(g_suffix) else key[: -len(v_suffix)]
                g, v = state.get(base + g_suffix), state.get(base + v_suffix)
                if g is None or v is None:
                    raise ModelLoadError(f"model.pth: weight-norm pair incomplete at {key!r}")
                done.update((base + g_suffix, base + v_suffix))
                # torch's own weight-norm kernel, so the folded weight equals what the release
                # recomputes at every forward.
                yield base + ".weight", torch._weight_norm(v.float(), g.float(), 0).to(v.dtype)
                break
        else:
            yield key, value


def from_model_keys(
    state: Mapping[str, torch.Tensor], weight_norm_keys: re.Pattern[str]
) -> dict[str, torch.Tensor]:
    """The inverse of `to_model_keys` for writing a checkpoint in the release's format: our names ->
    release names, Linear -> Conv1D layout, and the weights matching `weight_norm_keys` (release
    names) split into the parametrizations g / v pair."""
    out: dict[str, torch.Tensor] = {}
    inverse = (
        (re.compile(r"^gpt\.transformer\."), "gpt.gpt."),
        (re.compile(r"^gpt\.(text|mel)_pos_embedding\."), r"gpt.\1_pos_embedding.emb."),
        (
            re.compile(r"^gpt\.conditioning_perceiver\.attn\.(\d+)\."),
            r"gpt.conditioning_perceiver.layers.\1.0.",
        ),
        (
            re.compile(r"^gpt\.conditioning_perceiver\.ff\.(\d+)\."),
            r"gpt.conditioning_perceiver.layers.\1.1.",
        ),
        (re.compile(r"^gpt\.conditioning_perceiver\.norm_gamma$"), "gpt.conditioning_perceiver.norm.gamma"),
        (re.compile(r"^speaker_encoder\."), "hifigan_decoder.speaker_encoder."),
    )
    for key, value in state.items():
        for pattern, repl in inverse:
            key = pattern.sub(repl, key)
        if _CONV1D_RE.match(key):
            value = value.t().contiguous()
        if weight_norm_keys.match(key):
            base = key[: -len(".weight")]
            g = torch.linalg.vector_norm(value.float(), dim=tuple(range(1, value.dim())), keepdim=True)
            out[base + _WN_NEW[0]] = g.to(value.dtype)
            out[base + _WN_NEW[1]] = value
        else:
            out[key] = value
    return out


def check_against(
    mapped: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor], source: str
) -> list[str]:
    """Every expected tensor present with the right shape, or a ModelLoadError naming the first bad
    key. Returns the keys of `mapped` the model does not use."""
    for key, want in expected.items():
        got = mapped.get(key)
        if got is None:
            raise ModelLoadError(
                f"{source}: missing tensor {_release_name(key)!r} (shape {list(want.shape)})"
            )
        if tuple(got.shape) != tuple(want.shape):
            raise ModelLoadError(
                f"{source}: tensor {_release_name(key)!r} has shape {list(got.shape)}, the model built from "
                f"config.json expects {list(want.shape)}"
            )
        if got.is_floating_point() != want.is_floating_point():
            raise ModelLoadError(
                f"{source}: tensor {_release_name(key)!r} has dtype {got.dtype}, expected {want.dtype}"
            )
    return sorted(set(mapped) - set(expected))


def _release_name(key: str) -> str:
    """Best-effort release spelling of one of our keys, for error messages."""
    out = from_model_keys({key: torch.empty(0)}, _NEVER)
    return next(iter(out))


__all__ = [
    "PickledConfig",
    "check_against",
    "from_model_keys",
    "read_model_file",
    "read_speakers_file",
    "to_model_keys",
]
