"""Loading a model directory as released: variants that must load, and failures that must be clear."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from xtts_server import ModelLoadError
from xtts_server.model.checkpoint import read_model_file
from xtts_server.model.loader import load_model_dir
from xtts_server.random_model import make_test_model


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite_state(model_dir: Path, edit) -> None:  # type: ignore[no-untyped-def]
    state, config = read_model_file(model_dir / "model.pth")
    state = {k: v.clone() for k, v in state.items()}
    torch.save({"config": config, "model": edit(state)}, model_dir / "model.pth")


def _params(model_dir: Path) -> dict[str, torch.Tensor]:
    return load_model_dir(model_dir).model.state_dict()


def test_release_layout_loads_with_pickled_config_objects(tiny_model_dir: Path) -> None:
    raw, config = read_model_file(tiny_model_dir / "model.pth")
    assert config is not None and config["model_args"]["gpt_layers"] == 2  # the object became a dict
    assert any(".parametrizations.weight.original0" in k for k in raw)
    assert raw["gpt.gpt.h.0.attn.c_attn.weight"].shape == (128, 384)  # Conv1D layout [in, out]
    loaded = load_model_dir(tiny_model_dir)
    assert loaded.tokenizer.vocab_size == 6681
    assert sorted(loaded.speakers) == ["Ana Florence", "Claribel Dervla", "Daisy Studious", "Viktor Menelaos"]


def test_config_as_dict_variant_loads_the_same(tmp_path: Path, tiny_model_dir: Path) -> None:
    other = make_test_model(tmp_path / "dict", "tiny", seed=0, config_as_dict=True)
    a, b = _params(tiny_model_dir), _params(other)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_prefix_aliases_and_old_weight_norm_style_load_identically(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "variant")

    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {}
        for key, value in state.items():
            key = key.replace(".parametrizations.weight.original0", ".weight_g")
            key = key.replace(".parametrizations.weight.original1", ".weight_v")
            out["xtts." + key] = value  # trainer-style prefix
        # the aliases init_gpt_for_inference() adds, and DVAE keys from a training checkpoint
        out["xtts.gpt.gpt.wte.weight"] = state["gpt.mel_embedding.weight"]
        out["xtts.gpt.gpt_inference.lm_head.1.weight"] = state["gpt.mel_head.weight"]
        out["xtts.dvae.codebook.embed"] = torch.zeros(3, 3)
        return out

    _rewrite_state(variant, edit)
    a, b = _params(tiny_model_dir), _params(variant)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_alias_is_used_when_the_canonical_key_is_missing(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "alias")

    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state["gpt.gpt_inference.embeddings.weight"] = state.pop("gpt.mel_embedding.weight")
        return state

    _rewrite_state(variant, edit)
    a, b = _params(tiny_model_dir), _params(variant)
    assert torch.equal(a["gpt.mel_embedding.weight"], b["gpt.mel_embedding.weight"])


def test_weight_norm_is_folded_once(tiny_model_dir: Path) -> None:
    raw, _ = read_model_file(tiny_model_dir / "model.pth")
    g = raw["hifigan_decoder.waveform_decoder.ups.0.parametrizations.weight.original0"]
    v = raw["hifigan_decoder.waveform_decoder.ups.0.parametrizations.weight.original1"]
    model = load_model_dir(tiny_model_dir).model
    folded = model.hifigan_decoder.waveform_decoder.ups[0].weight
    norm = v.flatten(1).norm(dim=1).reshape(-1, 1, 1)
    torch.testing.assert_close(folded, g * v / norm)
    assert not any("parametrizations" in name for name, _ in model.named_parameters())


class _Exploit:
    """A pickle payload that would create a file if it were ever executed."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # type: ignore[no-untyped-def]
        return (os.system, (f"touch {self.marker}",))


def test_unsafe_pickle_is_refused_without_running_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "evil")
    marker = tmp_path / "pwned"
    state, _ = read_model_file(tiny_model_dir / "model.pth")  # not the file being overwritten: mmap
    torch.save({"config": _Exploit(marker), "model": dict(state)}, variant / "model.pth")
    with pytest.raises(ModelLoadError, match="does not allow") as info:
        load_model_dir(variant)
    assert "no code from it was run" in str(info.value)
    assert not marker.exists()


def test_other_classes_are_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "other")
    state, _ = read_model_file(tiny_model_dir / "model.pth")
    torch.save({"config": pickle.PickleError("x"), "model": dict(state)}, variant / "model.pth")
    with pytest.raises(ModelLoadError, match="does not allow"):
        load_model_dir(variant)


@pytest.mark.parametrize("name", ["config.json", "model.pth", "vocab.json"])
def test_missing_file_is_named(tmp_path: Path, tiny_model_dir: Path, name: str) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "missing")
    (variant / name).unlink()
    with pytest.raises(ModelLoadError, match=name.replace(".", r"\.")):
        load_model_dir(variant)


def test_missing_speakers_file_is_fine(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "nospk")
    (variant / "speakers_xtts.pth").unlink()
    assert load_model_dir(variant).speakers == {}


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not found"):
        load_model_dir(tmp_path / "nope")


def test_truncated_model_file(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "trunc")
    data = (variant / "model.pth").read_bytes()
    (variant / "model.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="truncated"):
        load_model_dir(variant)


def test_wrong_shape_names_the_tensor(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "shape")

    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        state["gpt.mel_head.weight"] = torch.zeros(1026, 64)
        return state

    _rewrite_state(variant, edit)
    with pytest.raises(ModelLoadError, match=r"gpt\.mel_head\.weight.*\[1026, 64\].*\[1026, 128\]"):
        load_model_dir(variant)


def test_missing_tensor_is_named(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "gone")

    def edit(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        del state["gpt.gpt.h.1.mlp.c_fc.weight"]
        return state

    _rewrite_state(variant, edit)
    with pytest.raises(ModelLoadError, match=r"missing tensor 'gpt\.gpt\.h\.1\.mlp\.c_fc\.weight'"):
        load_model_dir(variant)


def test_vocab_that_does_not_fit_the_model(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "vocab")
    vocab = json.loads((variant / "vocab.json").read_text())
    vocab["model"]["vocab"]["extra-token"] = 7000
    (variant / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(ModelLoadError, match=r"vocab\.json does not fit model\.pth"):
        load_model_dir(variant)


def test_bad_config_json(tmp_path: Path, tiny_model_dir: Path) -> None:
    variant = _copy(tiny_model_dir, tmp_path / "cfg")
    (variant / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json"):
        load_model_dir(variant)
    (variant / "config.json").write_text(json.dumps({"model_args": {"gpt_layers": "thirty"}}))
    with pytest.raises(ModelLoadError, match="gpt_layers must be int"):
        load_model_dir(variant)


def test_full_size_has_the_release_parameter_count() -> None:
    from xtts_server.model.xtts import XTTSModel
    from xtts_server.random_model import SIZES

    with torch.device("meta"):
        model = XTTSModel(SIZES["full"])
    n = sum(p.numel() for p in model.parameters())
    text_head = 6681 * 1024 + 6681  # in the release checkpoint, unused at inference
    # 466,874,863 counts the release's parameters with weight norm as g and v (one extra g per
    # weight-normed output channel) and the text head.
    assert n + text_head == 466_874_863 - _weight_norm_gains()


def _weight_norm_gains() -> int:
    from xtts_server.model.hifigan import HifiDecoder

    decoder = HifiDecoder()
    return sum(
        m.weight.shape[0]
        for name, m in decoder.waveform_decoder.named_modules()
        if name.startswith(("ups.", "resblocks.")) and hasattr(m, "weight") and m.weight.dim() == 3
    )
