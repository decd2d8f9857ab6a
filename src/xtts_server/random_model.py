"""`xtts-server make-test-model`: a random-weight checkpoint directory in the released format.

The released weights cannot be downloaded where this project is built and benchmarked, and speed does
not depend on weight values, so tests and benchmarks run on checkpoints made here: the same four
files, the same key names and shapes (weight norm as parametrizations, GPT-2 Conv1D layouts, the
`gpt.text_head`), `model.pth` pickling the Coqui config classes as the release does, and a vocab with
the release's special and language token ids. `--size full` has the release's 466,874,863 parameters.

Weights are drawn from a seeded generator in a fixed key order, so a seed gives the same files on
every machine.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
import pickle
import re
import types
from pathlib import Path
from typing import Any, ClassVar

import torch

from xtts_server.model.args import ModelArgs, ModelConfig
from xtts_server.model.checkpoint import from_model_keys
from xtts_server.model.xtts import XTTSModel
from xtts_server.text.vocab import build_test_vocab

SIZES: dict[str, ModelArgs] = {
    "full": ModelArgs(),
    # A small GPT for fast tests; the vocoder and speaker encoder are fixed-size in the release.
    "tiny": ModelArgs(gpt_layers=2, gpt_n_model_channels=128, gpt_n_heads=4, decoder_input_dim=128),
}

# Release layers whose weights are stored weight-normed (parametrizations.weight.original0/1).
WEIGHT_NORM_KEYS = re.compile(
    r"^hifigan_decoder\.waveform_decoder\.(ups|resblocks\.\d+\.convs[12])\.\d+\.weight$"
)

STUDIO_VOICES = ("Ana Florence", "Claribel Dervla", "Daisy Studious", "Viktor Menelaos")


class _ConfigObject:
    """Pickles as the Coqui config class named by `qualified` (module.Class), with `state` as its
    attribute dict, as the release's model.pth does."""

    def __init__(self, qualified: str, state: dict[str, Any]) -> None:
        self.qualified = qualified
        self.state = state


# The pure-Python pickler (its methods are overridable, unlike the C one's); untyped in typeshed.
_PurePickler: Any = pickle.__dict__["_Pickler"]


class _ReleasePickler(_PurePickler):
    """The pure-Python pickler, taught to write _ConfigObject as NEWOBJ of a Coqui class + BUILD."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _ConfigObject):
            module, _, name = obj.qualified.rpartition(".")
            return (_global_stub(module, name), (), obj.state)
        return NotImplemented

    def save_global(self, obj: Any, name: str | None = None) -> None:
        stub_name = getattr(obj, "_pickle_global", None)
        if stub_name is None:
            return super().save_global(obj, name)
        module, qual = stub_name
        self.write(pickle.GLOBAL + module.encode() + b"\n" + qual.encode() + b"\n")
        self.memoize(obj)
        return None

    # The type dispatch table holds the base class's functions: route functions to ours.
    dispatch: ClassVar[dict[type, Any]] = dict(_PurePickler.dispatch)
    dispatch[types.FunctionType] = save_global


def _global_stub(module: str, name: str) -> Any:
    """A callable that the pickler writes as the global `module.name`. (Pickling only: the reducer
    protocol wants a callable; it is never called here.)"""

    def stub() -> None:  # pragma: no cover - never called
        raise RuntimeError("pickling stub")

    stub._pickle_global = (module, name)  # type: ignore[attr-defined]
    return stub


class _PickleModule:
    """What torch.save needs of a pickle module."""

    Pickler = _ReleasePickler
    Unpickler = pickle.Unpickler
    dump = staticmethod(pickle.dump)
    load = staticmethod(pickle.load)


def random_state(model: XTTSModel, seed: int) -> dict[str, torch.Tensor]:
    """Seeded random values for every parameter and statistic; fixed buffers (the speaker encoder's
    window, mel filterbank, pre-emphasis filter) keep their computed values."""
    gen = torch.Generator().manual_seed(seed)
    params = dict(model.named_parameters())
    out: dict[str, torch.Tensor] = {}
    for key, value in model.state_dict().items():
        t = torch.empty_like(value)
        if key.endswith("num_batches_tracked"):
            t = value.clone()
        elif key.endswith("running_mean"):
            t.normal_(0.0, 0.1, generator=gen)
        elif key.endswith("running_var"):
            t.uniform_(0.5, 1.5, generator=gen)
        elif key == "mel_stats":
            t.uniform_(1.0, 4.0, generator=gen)  # divides the log-mel: positive, order of magnitude 1
        elif key not in params:
            t = value.clone()  # a fixed buffer
        elif key.endswith("bias"):
            t.normal_(0.0, 0.02, generator=gen)
        elif value.dim() == 1:
            t.normal_(1.0, 0.1, generator=gen)  # norm gains
        else:
            fan_in = value[0].numel()
            gain = 2.0 if key == "gpt.mel_head.weight" else 1.0  # wider logits: clear argmax margins
            t.normal_(0.0, gain / math.sqrt(fan_in), generator=gen)
        out[key] = t
    return out


def make_test_model(
    out_dir: str | Path, size: str = "tiny", seed: int = 0, *, config_as_dict: bool = False
) -> Path:
    """Write config.json, model.pth, vocab.json and speakers_xtts.pth to `out_dir`."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    vocab_json = build_test_vocab()
    n_text = max(json.loads(vocab_json)["model"]["vocab"].values()) + 1
    args = dataclasses.replace(SIZES[size], gpt_number_text_tokens=n_text)
    config = ModelConfig(args=args)

    model = XTTSModel(args)
    state = random_state(model, seed)
    gen = torch.Generator().manual_seed(seed + 1)
    dim = args.gpt_n_model_channels
    # The release's checkpoint also holds the (unused at inference) text head.
    state["gpt.text_head.weight"] = torch.randn(n_text, dim, generator=gen) / math.sqrt(dim)
    state["gpt.text_head.bias"] = torch.randn(n_text, generator=gen) * 0.02
    release_state = from_model_keys(state, WEIGHT_NORM_KEYS)

    config_dict = config.to_dict()
    pickled_config: Any = config_dict if config_as_dict else _config_objects(config_dict)
    buffer = io.BytesIO()
    torch.save({"config": pickled_config, "model": release_state}, buffer, pickle_module=_PickleModule)
    (root / "model.pth").write_bytes(buffer.getbuffer())
    (root / "config.json").write_text(json.dumps(config_dict, indent=4) + "\n", encoding="utf-8")
    (root / "vocab.json").write_text(vocab_json, encoding="utf-8")

    speakers = {}
    for name in STUDIO_VOICES:
        emb = torch.randn(1, 512, 1, generator=gen)
        speakers[name] = {
            "gpt_cond_latent": torch.randn(1, args.cond_latents, dim, generator=gen),
            "speaker_embedding": emb / emb.norm(),  # the encoder's output is L2-normalised
        }
    torch.save(speakers, root / "speakers_xtts.pth")
    return root


def _config_objects(config: dict[str, Any]) -> _ConfigObject:
    """The config as the release pickles it: an XttsConfig holding XttsArgs and XttsAudioConfig."""
    state = dict(config)
    state["model_args"] = _ConfigObject("TTS.tts.models.xtts.XttsArgs", dict(config["model_args"]))
    state["audio"] = _ConfigObject("TTS.tts.models.xtts.XttsAudioConfig", dict(config["audio"]))
    return _ConfigObject("TTS.tts.configs.xtts_config.XttsConfig", state)
