"""Loading a model directory as released: config.json, model.pth, vocab.json, speakers_xtts.pth.

dvae.pth, mel_stats.pth and hash.md5 may be present and are not needed. The network is built on the
meta device and the checkpoint's tensors are assigned into it, so the weights exist once in memory;
weight norm is folded during the key mapping.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from xtts_server.errors import ModelLoadError
from xtts_server.model.args import ModelConfig
from xtts_server.model.checkpoint import check_against, read_model_file, read_speakers_file, to_model_keys
from xtts_server.model.xtts import XTTSModel
from xtts_server.text.tokenizer import Tokenizer

logger = logging.getLogger(__name__)

REQUIRED_FILES = ("config.json", "model.pth", "vocab.json")
SPEAKERS_FILE = "speakers_xtts.pth"


@dataclass
class LoadedModel:
    model: XTTSModel
    tokenizer: Tokenizer
    config: ModelConfig
    speakers: dict[str, dict[str, torch.Tensor]]  # built-in studio voices by name
    model_dir: Path


def read_config(path: Path) -> ModelConfig:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ModelLoadError(f"config.json could not be read: {e}") from e
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"config.json ({path}) is not valid JSON: {e}") from e
    return ModelConfig.from_dict(data)


def load_model_dir(
    model_dir: str | Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> LoadedModel:
    started = time.perf_counter()
    root = Path(model_dir)
    if not root.is_dir():
        raise ModelLoadError(f"model directory not found: {root}")
    for name in REQUIRED_FILES:
        if not (root / name).is_file():
            raise ModelLoadError(
                f"model directory {root} has no {name}; a released XTTS v2 directory holds "
                f"{', '.join(REQUIRED_FILES)} and {SPEAKERS_FILE}"
            )

    config = read_config(root / "config.json")
    tokenizer = Tokenizer.from_file(root / "vocab.json")
    # As the reference: the vocab decides the text-token count and the [START]/[STOP] ids.
    args = dataclasses.replace(
        config.args,
        gpt_number_text_tokens=tokenizer.vocab_size,
        gpt_start_text_token=tokenizer.start_id,
        gpt_stop_text_token=tokenizer.stop_id,
    )
    config = dataclasses.replace(config, args=args)

    raw, _pickled_config = read_model_file(root / "model.pth")
    mapped = to_model_keys(raw)
    del raw
    with torch.device("meta"):
        model = XTTSModel(args)
    expected = model.state_dict()
    text_rows = mapped.get("gpt.text_embedding.weight")
    if text_rows is not None and text_rows.shape[0] != tokenizer.vocab_size:
        raise ModelLoadError(
            f"vocab.json does not fit model.pth: the vocab has {tokenizer.vocab_size} ids but the "
            f"model's text embedding has {text_rows.shape[0]} rows. Use the vocab.json released "
            f"with this model."
        )
    unused = check_against(mapped, expected, f"model.pth ({root / 'model.pth'})")
    if unused:
        logger.warning(
            "model.pth: ignoring %d tensors the model does not use, e.g. %s", len(unused), unused[:3]
        )
    state = {k: mapped[k].float() if mapped[k].is_floating_point() else mapped[k] for k in expected}
    model.load_state_dict(state, strict=True, assign=True)
    del state
    del mapped
    model.eval().requires_grad_(False)
    model.to(device=device)
    if dtype != torch.float32:
        # Half precision for the GPT stack and the vocoder; the conditioning path stays float32.
        model.gpt.to(dtype)
        model.hifigan_decoder.to(dtype)
        # Cloning runs once per voice: keep it in float32, as the reference computes it.
        model.gpt.conditioning_encoder.float()
        model.gpt.conditioning_perceiver.float()

    speakers: dict[str, dict[str, torch.Tensor]] = {}
    if (root / SPEAKERS_FILE).is_file():
        speakers = read_speakers_file(root / SPEAKERS_FILE)
    else:
        logger.info("%s not found in %s: no built-in studio voices", SPEAKERS_FILE, root)

    n_params = sum(p.numel() for p in model.parameters())
    logger.info(
        "loaded XTTS v2 from %s in %.2f s: %.1f M parameters, %s, %s, %d studio voices",
        root, time.perf_counter() - started, n_params / 1e6, device, dtype, len(speakers),
    )  # fmt: skip
    return LoadedModel(model=model, tokenizer=tokenizer, config=config, speakers=speakers, model_dir=root)
