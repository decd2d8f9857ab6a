"""How far do half-precision weights move the output from float32? (issue 6: choosing the default dtype)

    python bench/dtype_fidelity.py --model-dir /tmp/full --sentences 20

For each sentence, on one GPU and the same random full-size checkpoint:
- greedy codes: float32 vs the half dtype, both decoding greedily (`do_sample=False`); reported as
  the share of sentences whose codes are identical and the mean length of the common prefix;
- waveform SNR: the float32 codes forced through the half-precision GPT (one pass, teacher-forced
  latents) and vocoder, against float32; so the SNR measures numerics, not a diverged sampling path.
Variants: bfloat16, float16, and each with the vocoder kept in float32.

--engine: also what the server runs, the batching engine in float16 (fused Triton decode step and
sampler) against the engine in float32, one stream at a time, greedy, streamed in chunks of 20:
identical codes, common prefix, and the SNR of the streamed audio where the codes are identical.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch

SENTENCES = [
    "This is a test of the real-time text-to-speech synthesis system.",
    "Hello there, how can I help you today?",
    "Please hold while I transfer your call to the billing department.",
    "Your appointment is confirmed for Tuesday at three in the afternoon.",
    "I'm sorry, I didn't catch that. Could you say it again?",
    "The weather tomorrow will be sunny with a light breeze from the west.",
    "Thank you for calling, and have a wonderful evening.",
    "Your order number is four five seven two, and it ships today.",
    "Would you like to hear about our new premium plan?",
    "The meeting has been moved to the second floor conference room.",
    "Press one for sales, two for support, or stay on the line.",
    "We have received your payment of forty two dollars.",
    "Can you please confirm your date of birth?",
    "The next train to the airport leaves in twelve minutes.",
    "Let me check that for you, it will only take a moment.",
    "Our office hours are from nine to five, Monday through Friday.",
    "I have updated your address in our records.",
    "Is there anything else I can help you with?",
    "The password must contain at least eight characters.",
    "Goodbye, and thank you for your patience.",
]


def teacher_forced_audio(tts: Any, voice: Any, sentence: str, codes: list[int]) -> torch.Tensor:
    """Latents of the given codes in one GPT pass, then the vocoder -> wav [N] float32."""
    gpt = tts.model.gpt
    dtype = gpt.text_embedding.weight.dtype
    with torch.inference_mode():
        prompt = gpt.prompt(voice.gpt_cond_latent.to(tts.device, dtype), tts._text_ids(sentence, "en"))
        p = prompt.shape[1]
        c = torch.tensor([codes], device=tts.device)
        # Code k is embedded at audio position k + 1 and its hidden state gives latent k + 1.
        emb = gpt.audio_embedding(c[:, :-1], torch.arange(1, len(codes), device=tts.device)[None])
        x = torch.cat([prompt, emb], dim=1)
        cache = gpt.new_cache(1, x.shape[1], dtype, tts.device)
        rows = torch.zeros(1, dtype=torch.long, device=tts.device)
        hidden = gpt(x, torch.arange(x.shape[1], device=tts.device)[None], cache, rows)
        latents = gpt.latents(hidden[:, p - 1 :])  # [1, len(codes), dim]
        decoder = tts.model.hifigan_decoder
        vdtype = decoder.waveform_decoder.conv_pre.weight.dtype
        g = voice.speaker_embedding.to(tts.device, vdtype)
        return decoder(latents.to(vdtype), g).reshape(-1).float()


def engine_streams(tts: Any, voice: Any, sentences: list[str], max_new: int) -> list[tuple[list[int], Any]]:
    """Each sentence alone through the engine (no graphs: the same kernels, eagerly), greedy ->
    (codes, streamed audio float32 [N])."""
    import queue

    import numpy as np

    from xtts_server.engine import Engine, EngineConfig, EngineRequest
    from xtts_server.inference.sampling import SamplingParams

    engine = Engine(tts.model, tts.device, EngineConfig(slots=4, cuda_graphs=False))
    engine.start()
    out = []
    try:
        for s in sentences:
            q: queue.Queue[Any] = queue.Queue()
            engine.submit(
                EngineRequest(
                    tts.tokenize(s, "en"),
                    voice.gpt_cond_latent,
                    voice.speaker_embedding,
                    SamplingParams(do_sample=False),
                    q.put,
                    max_new_tokens=max_new,
                )
            )
            parts = []
            while True:
                item = q.get(timeout=120)
                if item.error is not None:
                    raise item.error
                parts.append(item.audio)
                if item.done:
                    break
            out.append((list(item.codes), torch.from_numpy(np.concatenate(parts))))
    finally:
        engine.stop()
    return out


def snr_db(ref: torch.Tensor, x: torch.Tensor) -> float:
    noise = (ref - x).pow(2).sum().item()
    return math.inf if noise == 0 else 10 * math.log10(ref.pow(2).sum().item() / noise)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, default=Path("/tmp/full"))
    parser.add_argument("--sentences", type=int, default=20)
    parser.add_argument("--max-new-tokens", type=int, default=120)
    parser.add_argument("--variants", default="0,1,2,3", help="indices of the variants to run")
    parser.add_argument("--engine", action="store_true", help="also the float16 engine against float32's")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    from xtts_server import XTTS

    sentences = SENTENCES[: args.sentences]
    ref = XTTS.load(args.model_dir, device="cuda", dtype=torch.float32)
    voice = ref.studio_voice(ref.studio_voices[0])
    ref_codes = [
        ref.synthesize(s, "en", voice, do_sample=False, max_new_tokens=args.max_new_tokens).codes[0]
        for s in sentences
    ]
    ref_audio = [teacher_forced_audio(ref, voice, s, c) for s, c in zip(sentences, ref_codes, strict=True)]
    ref_engine = engine_streams(ref, voice, sentences, args.max_new_tokens) if args.engine else []
    del ref
    torch.cuda.empty_cache()
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(), "sentences": len(sentences),
                              "max_new_tokens": args.max_new_tokens, "variants": []}  # fmt: skip
    variants = [
        ("bfloat16", torch.bfloat16, False),
        ("bfloat16 + fp32 vocoder", torch.bfloat16, True),
        ("float16", torch.float16, False),
        ("float16 + fp32 vocoder", torch.float16, True),
    ]
    for name, dtype, vocoder_fp32 in (variants[int(i)] for i in args.variants.split(",")):
        tts = XTTS.load(args.model_dir, device="cuda", dtype=dtype)
        if vocoder_fp32:
            tts.model.hifigan_decoder.float()
        same, prefix, snrs = 0, [], []
        for s, codes, audio in zip(sentences, ref_codes, ref_audio, strict=True):
            got = tts.synthesize(s, "en", voice, do_sample=False, max_new_tokens=args.max_new_tokens).codes[0]
            same += got == codes
            common = next((i for i, (a, b) in enumerate(zip(got, codes, strict=False)) if a != b), None)
            prefix.append(min(len(got), len(codes)) if common is None else common)
            snrs.append(snr_db(audio, teacher_forced_audio(tts, voice, s, codes)))
        row = {"variant": name, "greedy_identical": f"{same}/{len(sentences)}",
               "mean_common_prefix": sum(prefix) / len(prefix),
               "mean_codes": sum(len(c) for c in ref_codes) / len(ref_codes),
               "snr_db_min": min(snrs), "snr_db_median": sorted(snrs)[len(snrs) // 2]}  # fmt: skip
        report["variants"].append(row)
        print(json.dumps(row), flush=True)
        del tts
        torch.cuda.empty_cache()
    if args.engine:
        tts = XTTS.load(args.model_dir, device="cuda", dtype=torch.float16)
        half = engine_streams(tts, voice, sentences, args.max_new_tokens)
        same, prefix, snrs = 0, [], []
        for (codes32, audio32), (codes16, audio16) in zip(ref_engine, half, strict=True):
            same += codes16 == codes32
            common = next((i for i, (a, b) in enumerate(zip(codes16, codes32, strict=False)) if a != b), None)
            prefix.append(min(len(codes16), len(codes32)) if common is None else common)
            if codes16 == codes32:
                snrs.append(snr_db(audio32, audio16))
        row = {
            "variant": "float16 engine (fused decode + sampler) vs float32 engine",
            "greedy_identical": f"{same}/{len(sentences)}",
            "mean_common_prefix": sum(prefix) / len(prefix),
            "mean_codes": sum(len(c) for c, _ in ref_engine) / len(ref_engine),
            "float32_engine_equals_simple_path": sum(
                c == r for (c, _), r in zip(ref_engine, ref_codes, strict=True)
            ),
            "snr_db_min": min(snrs, default=None),
            "snr_db_median": sorted(snrs)[len(snrs) // 2] if snrs else None,
        }
        report["variants"].append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
