"""Record the reference implementation's outputs on our random checkpoints (golden files for CI).

Run in a venv that has coqui-tts 0.28.0 (the test-only oracle) and our package on the path:

    PYTHONPATH=src:tests/parity /path/to/oracle/bin/python scripts/parity/make_model_golden.py [tiny|full ...]

For each size it makes the checkpoint with `make_test_model(size, seed=0)`, loads it in the reference,
and stores in tests/parity/golden/model_<size>.npz: a fingerprint of the weights, the text ids of the
test sentences, the cloned voice from the test clips, the greedy codes at repetition penalty 1.0 and
5.0, and the reference `inference()` waveform for each sentence at penalty 5.0.
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests" / "parity")]

from clips import write_clips  # noqa: E402
from parity_cases import SENTENCES, TOKENS, state_fingerprint  # noqa: E402

from xtts_server.random_model import make_test_model  # noqa: E402


def run(size: str, workdir: Path) -> None:
    from TTS.tts.configs.xtts_config import XttsConfig
    from TTS.tts.models.xtts import Xtts

    model_dir = make_test_model(workdir / size, size, seed=0)
    fingerprint = state_fingerprint(model_dir / "model.pth")
    ref_dir = workdir / f"{size}-ref"  # the reference rewrites model.pth in place: give it a copy
    shutil.copytree(model_dir, ref_dir)
    config = XttsConfig()
    config.load_json(str(ref_dir / "config.json"))
    model = Xtts.init_from_config(config)
    model.load_checkpoint(config, checkpoint_dir=str(ref_dir), eval=True)
    model.float().eval()

    clips = write_clips(workdir)
    out: dict[str, np.ndarray] = {"fingerprint": np.array(fingerprint)}
    with torch.inference_mode():
        latent, speaker = model.get_conditioning_latents(
            [str(p) for p in clips],
            gpt_cond_len=config.gpt_cond_len,
            gpt_cond_chunk_len=config.gpt_cond_chunk_len,
            max_ref_length=config.max_ref_len,
            sound_norm_refs=config.sound_norm_refs,
        )
        out["gpt_cond_latent"] = latent.numpy()
        out["speaker_embedding"] = speaker.numpy()
        one_latent, one_speaker = model.get_conditioning_latents(
            str(clips[0]), gpt_cond_len=config.gpt_cond_len, gpt_cond_chunk_len=config.gpt_cond_chunk_len
        )
        out["one_clip_gpt_cond_latent"] = one_latent.numpy()
        out["one_clip_speaker_embedding"] = one_speaker.numpy()

        lo, hi = TOKENS[size]
        for i, sentence in enumerate(SENTENCES):
            ids = model.tokenizer.encode(sentence.strip().lower(), lang="en")
            out[f"ids_{i}"] = np.array(ids)
            text = torch.IntTensor(ids).unsqueeze(0)
            for penalty in (1.0, 5.0):
                codes = model.gpt.generate(
                    cond_latents=latent,
                    text_inputs=text,
                    do_sample=False,
                    repetition_penalty=penalty,
                    num_return_sequences=1,
                    num_beams=1,
                    min_new_tokens=lo,
                    max_new_tokens=hi,
                )
                out[f"codes_{i}_rp{penalty:g}"] = codes[0].numpy()
            wav = model.inference(
                sentence, "en", latent, speaker, do_sample=False, repetition_penalty=5.0,
                min_new_tokens=lo, max_new_tokens=hi,
            )["wav"]  # fmt: skip
            out[f"wav_{i}"] = np.asarray(wav, dtype=np.float32)
    target = ROOT / "tests" / "parity" / "golden" / f"model_{size}.npz"
    np.savez_compressed(target, **out)
    meta = {k: list(v.shape) for k, v in out.items()}
    print(json.dumps({"written": str(target), "arrays": meta}, indent=1))


def main() -> None:
    sizes = sys.argv[1:] or ["tiny", "full"]
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:
            run(size, Path(tmp))


if __name__ == "__main__":
    main()
