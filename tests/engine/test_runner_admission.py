"""The runner's admission (one graph per prefill bucket on a GPU; the same padded shapes run eagerly
here): newcomers land in their own rows, padding rows write only the scratch row, live rows are
untouched, and each newcomer starts as the simple path does."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from xtts_server.engine.runner import Runner, RunnerConfig
from xtts_server.inference.vocoder_stream import to_device_all


def _runner(tts: Any, slots: int = 6) -> Runner:
    a = tts.model.gpt.args
    config = RunnerConfig.default(slots, 40, a.cond_latents + 60 + 3, cuda_graphs=False, buckets=True)
    return Runner(tts.model, config, torch.device("cpu"))


def _state(runner: Runner) -> list[torch.Tensor]:
    return [t.clone() for t in (*runner._row_tensors, runner.cache.kv)]


def test_newcomers_fill_their_rows_and_padding_only_the_scratch_row(tiny_tts: Any) -> None:
    runner = _runner(tiny_tts)
    voice = tiny_tts.studio_voice(tiny_tts.studio_voices[0])
    texts = [
        tiny_tts.tokenize(t, "en") for t in ("Hello there.", "A longer sentence than the first one.", "Hi.")
    ]
    params = [
        (0.7, 30, 0.9, 2.0, True, 11, 3),
        (1.0, 0, 1.0, 1.0, False, 0, 0),
        (0.9, 5, 0.8, 5.0, True, 7, 1),
    ]
    runner.cache.kv.normal_()  # stand-ins for live rows' state
    runner.codes.random_(0, 100)
    before = _state(runner)
    with torch.inference_mode():
        # 3 newcomers (a bucket of 4), each with its own speaker embedding
        speakers = [voice.speaker_embedding * (i + 1) for i in range(3)]
        runner.prefill(1, texts, [voice.gpt_cond_latent] * 3, speakers, params)
    after = _state(runner)
    scratch, rows = runner.scratch, [1, 2, 3]
    untouched = [r for r in range(runner.config.slots) if r not in rows]
    for t0, t1 in zip(before, after, strict=True):
        dim = 2 if t0.dim() == 6 else 0  # the cache: [L, 2, R, H, S, D]
        idx = torch.tensor(untouched)
        assert torch.equal(t0.index_select(dim, idx), t1.index_select(dim, idx))
    assert not torch.equal(before[-1][:, :, scratch], after[-1][:, :, scratch])  # the padding row went there
    # Each newcomer: its parameters, first step, prompt length and a first code from its logits.
    p = runner.params
    for row, ids, (temperature, top_k, top_p, penalty, sample, seed, least) in zip(
        rows, texts, params, strict=True
    ):
        assert p.temperature[row].item() == np.float32(temperature) and p.top_k[row].item() == top_k
        assert p.top_p[row].item() == np.float32(top_p) and p.repetition_penalty[row].item() == penalty
        assert (
            p.do_sample[row].item() == sample
            and p.seed[row].item() == seed
            and p.min_new[row].item() == least
        )
        assert runner.step[row].item() == 1
        assert runner.pos[row].item() == tiny_tts.model.gpt.args.cond_latents + len(ids) + 3
        seen = runner.seen[row].nonzero().flatten().tolist()
        assert {1, tiny_tts.model.gpt.args.gpt_start_audio_token, runner.codes[row].item()} == set(seen)
    for row, speaker in zip(rows, speakers, strict=True):  # the vocoder's conditioning, per row
        assert torch.equal(runner.spk[row], speaker[0].to(runner.voc_dtype))


def test_a_greedy_newcomer_starts_as_the_model_alone(tiny_tts: Any) -> None:
    # Row 2 of a padded bucket against the same prompt prefilled alone by the model code.
    runner = _runner(tiny_tts)
    gpt = tiny_tts.model.gpt
    voice = tiny_tts.studio_voice(tiny_tts.studio_voices[0])
    ids = tiny_tts.tokenize("Good morning, how are you?", "en")
    with torch.inference_mode():
        runner.prefill(
            2, [ids], [voice.gpt_cond_latent], [voice.speaker_embedding], [(1.0, 0, 1.0, 1.0, False, 0, 0)]
        )
        prompt = gpt.prompts(voice.gpt_cond_latent, torch.tensor([ids]), torch.tensor([len(ids)]))
        hidden, keys, _ = gpt.prefill(prompt)
        latent = gpt.latents(hidden[:, -1])
        logits = gpt.logits(latent).float()
    n = prompt.shape[1]
    torch.testing.assert_close(runner.cache.k[:, 2, :, :n], keys[:, 0], rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(runner.hist[2, 0], latent[0], rtol=1e-4, atol=1e-5)
    assert runner.codes[2].item() == logits.argmax().item()  # greedy; penalty 1 changes nothing


def test_to_device_all_keeps_each_arrays_shape_and_values() -> None:
    arrays = [
        np.arange(6, dtype=np.int64).reshape(2, 3),
        np.array([7], dtype=np.int64),
        np.zeros(0, dtype=np.int64),
    ]
    got = to_device_all(arrays, torch.device("cpu"))
    assert [tuple(t.shape) for t in got] == [(2, 3), (1,), (0,)]
    assert got[0].tolist() == [[0, 1, 2], [3, 4, 5]] and got[1].tolist() == [7]
