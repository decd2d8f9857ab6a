"""The engine's device side: every stream's state in preallocated tensors, and the three model calls
(prefill newcomers, decode one step for all rows, run vocoder windows), as CUDA graphs on a GPU.

Rows. Row i of every per-row tensor (KV cache, last code, positions, repetition mask, sampling
parameters, latent history) belongs to one stream. Live streams always occupy rows [0, n): when one
leaves, the last row moves into its place (`move_row`). So a decode step for n streams works on the
leading rows of the static buffers, whose addresses never change: one captured graph per batch-size
bucket B >= n (rows past n compute garbage that nobody reads), with no gather and no host copy in.
One more row past the slots, the scratch row, takes the writes of a prefill's padding rows.

Admission. The newcomers' text ids, prompt lengths, target rows and sampling parameters go to the
device in one copy of a pinned host buffer (their voices' latents in another); one graph per
prefill bucket then builds the prompts, runs them, places keys and values in the rows' caches,
sets the rows' parameters and chooses each one's first code.

Positions. After a row has chosen code k: `codes` = code k, `step` = k + 1 (codes chosen so far),
`pos` = P + k where P is its prompt length (the sequence position code k is written at). A decode
step embeds code k at audio position k + 1, writes it at `pos`, and chooses code k + 1 from the
hidden state; its latent (the vocoder's input) is stored at `hist[row, k + 1]`.

Vocoder. On a GPU the vocoder windows run on a stream of their own, beside the decode steps:
they read the latent history in stream order after the steps that wrote it, and a row's history
is not overwritten (a move, a newcomer) before those reads are done.

Attention length. A step attends to positions [0, S') of each row, S' a bucket >= the longest
live row: the cost follows the text actually cached, not the cache's capacity.
"""

from __future__ import annotations

import functools
import gc
import logging
import time
import types
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from xtts_server.engine.green_context import green_stream
from xtts_server.engine.sampler import RowParams, choose_codes
from xtts_server.engine.vocoder_batch import WindowBatch, level_caps
from xtts_server.inference.vocoder_stream import WindowPlan, to_device_all, window_frames
from xtts_server.model.xtts import XTTSModel

logger = logging.getLogger(__name__)


def fused_sampler() -> types.ModuleType:
    """`engine.fused_sampler`, imported when used (it needs Triton)."""
    from xtts_server.engine import fused_sampler

    return fused_sampler


def fused_frames() -> types.ModuleType:
    """`engine.fused_frames`, imported when used (it needs Triton)."""
    from xtts_server.engine import fused_frames

    return fused_frames


def fused_decode() -> types.ModuleType:
    """`model.fused_decode`, imported when used (it needs Triton)."""
    from xtts_server.model import fused_decode

    return fused_decode


def fused_prefill() -> types.ModuleType:
    """`model.fused_prefill`, imported when used (it needs Triton)."""
    from xtts_server.model import fused_prefill

    return fused_prefill


# With the fused decode step, the prefill runs in fewer kernels too (`model.fused_prefill`).
# Benchmarks set it False to time the unfused prefill.
FUSED_PREFILL = True


# Later vocoder windows (not a stream's first, which the first audio waits for) on a CUDA green
# context of this many multiprocessors; 0: every window on the whole GPU. A window queued beside
# the decode steps seems to slow them by most of its own length (BENCHMARKS.md, session 15); on a
# few multiprocessors it would leave the rest to them, and a later window has a whole chunk of
# playback as slack. A benchmark switch until timed.
LATER_WINDOW_SMS = 0
# The admission's integer fields after the framed text (`Runner.adm_int`), in order.
ADM_FIELDS = ("row", "top_k", "seed", "min_new", "sample", "last", "pos")
# Pinned host twins of the vocoder's index arrays, used in turn (a batch's copy must have left one
# before it is packed again: several batches may be queued).
VOCODER_UPLOADS = 8


def _bucket(n: int, buckets: Sequence[int]) -> int | None:
    """The smallest bucket >= n, or None."""
    return next((b for b in buckets if b >= n), None)


@dataclass(frozen=True)
class RunnerConfig:
    slots: int  # streams decoded together at most (rows)
    max_prompt: int  # longest prompt (32 conditioning latents + text + 3)
    max_new: int  # most codes per stream
    decode_batches: tuple[int, ...]  # batch-size buckets of the decode step
    attend_buckets: tuple[int, ...]  # attention-length buckets (positions)
    prefill_batches: tuple[int, ...]  # newcomers prefilled together
    prompt_buckets: tuple[int, ...]  # prompt-length buckets
    # Most prompt positions one prefill may hold (batch bucket x length bucket): bounds the
    # activations and the keys and values it stages (about 0.2 MB per position in half precision: every
    # layer's qkv, 184 KB, and one layer's activations; about 0.3 MB unfused).
    prefill_tokens: int
    vocoder_batches: tuple[int, ...]  # vocoder windows decoded together
    vocoder_frames: tuple[int, ...]  # window-length buckets (generator frames)
    cuda_graphs: bool
    # Decode buckets up to this batch run the fused Triton step (`model.fused_decode`); 0: none.
    fused_batches: int = 0
    # Prefill with the add-and-LayerNorm kernels and the GEMMs' GELU epilogue (`model.fused_prefill`).
    fused_prefill: bool = False
    # Choose codes and advance the rows in one Triton kernel (`engine.fused_sampler`), not ~100.
    fused_sampler: bool = False
    # Build the vocoder's frames in a Triton kernel per interpolation stage (`engine.fused_frames`).
    fused_frames: bool = False
    # Pad shapes to the buckets (needed by graphs; without graphs it runs the same padded shapes
    # eagerly, which is how CPU tests cover the padding).
    buckets: bool = True
    # On a GPU, run the vocoder on its own CUDA stream, beside the decode steps (its graphs in their
    # own memory pool), instead of between them.
    vocoder_stream: bool = True

    @property
    def seq_len(self) -> int:
        return self.max_prompt + self.max_new

    def prefill_shape(self, n: int, longest: int) -> tuple[int, int] | None:
        """The (batch, length) bucket for n prompts of at most `longest` positions, or None when
        it would exceed the token budget (one prompt alone always fits)."""
        b, p = _bucket(n, self.prefill_batches), _bucket(longest, self.prompt_buckets)
        if b is None or p is None or (b > 1 and b * p > self.prefill_tokens):
            return None
        return b, p

    @staticmethod
    def default(
        slots: int,
        max_new: int,
        max_prompt: int,
        cuda_graphs: bool,
        buckets: bool | None = None,
        fused_batches: int = 0,
        fused_sampler: bool = False,
        vocoder_stream: bool = True,
    ) -> RunnerConfig:
        decode = tuple(b for b in (1, 2, 4, 8, 16, 24, 32, 48, 64, 96, 128, 160, 192, 224, 256) if b < slots)
        seq = max_prompt + max_new
        attend = (*tuple(s for s in (128, 256, 384, 512, 768) if s < seq), seq)
        prompts = (*tuple(range(64, max_prompt, 32)), max_prompt)
        return RunnerConfig(
            slots=slots,
            max_prompt=max_prompt,
            max_new=max_new,
            decode_batches=(*decode, slots),
            attend_buckets=attend,
            # Newcomers that arrive together start together (a burst of 64 callers: one prefill).
            prefill_batches=(*tuple(b for b in (1, 2, 4, 8, 16, 32) if b < slots), min(slots, 64)),
            prompt_buckets=prompts,
            prefill_tokens=8192,
            # A launch holds at most one window a live stream: no bucket past the slots is used.
            vocoder_batches=(*tuple(b for b in (1, 2, 4, 8, 16) if b < slots), min(slots, 32)),
            vocoder_frames=(64, 96, 128, 192, 256),
            cuda_graphs=cuda_graphs,
            fused_batches=fused_batches,
            fused_prefill=FUSED_PREFILL and fused_batches > 0,
            fused_sampler=fused_sampler,
            fused_frames=fused_sampler,  # (the same condition: Triton on a GPU)
            buckets=cuda_graphs if buckets is None else buckets or cuda_graphs,
            vocoder_stream=vocoder_stream,
        )


@dataclass
class VocodeJob:
    """Vocoder windows in flight (`Runner.vocode_launch`)."""

    out: list[np.ndarray | None]  # each window's samples, filled now (unbatched) or at collect
    groups: list[tuple[list[int], list[WindowPlan], torch.Tensor]]  # windows, plans, host samples
    done: torch.cuda.Event | None  # recorded after the last copy to the host (on a GPU)


class _Graphs:
    """Captured CUDA graphs keyed by shape, sharing one memory pool (they never run concurrently,
    and every output is consumed before the next replay)."""

    def __init__(self) -> None:
        self.pool = torch.cuda.graph_pool_handle()
        # key -> (graph, its outputs, the captured function: its closure holds tensors the graph
        # reads by address, which must outlive it)
        self.graphs: dict[tuple[object, ...], tuple[torch.cuda.CUDAGraph, object, object]] = {}

    def capture(self, key: tuple[object, ...], fn: Callable[[], object]) -> None:
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            fn()  # warm-up: lazy initialisation (cuBLAS handles, workspaces) happens outside capture
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph, pool=self.pool):
            out = fn()
        self.graphs[key] = (graph, out, fn)

    def run(self, key: tuple[object, ...]) -> object:
        graph, out, _ = self.graphs[key]
        graph.replay()
        return out


class Runner:
    def __init__(self, model: XTTSModel, config: RunnerConfig, device: torch.device) -> None:
        self.model = model
        self.gpt = model.gpt
        self.config = config
        self.device = device
        a = self.gpt.args
        self.dtype = self.gpt.text_embedding.weight.dtype
        self.stop = a.gpt_stop_audio_token
        self.vocab = a.gpt_num_audio_tokens
        self.dim = a.gpt_n_model_channels
        self.mel_positions = a.mel_positions
        r = config.slots + 1  # the slots and the scratch row
        self.scratch = config.slots
        self.cache = self.gpt.new_cache(r, config.seq_len, self.dtype, device)
        self.codes = torch.zeros(r, dtype=torch.long, device=device)
        self.step = torch.zeros(r, dtype=torch.long, device=device)
        self.pos = torch.zeros(r, dtype=torch.long, device=device)
        self.seen = torch.zeros(r, self.vocab, dtype=torch.bool, device=device)
        self.hist = torch.zeros(r, config.max_new + 1, self.dim, dtype=self.dtype, device=device)
        decoder = model.hifigan_decoder
        self.voc_dtype = decoder.waveform_decoder.conv_pre.weight.dtype
        # Each row's speaker embedding (the vocoder's conditioning), set at admission.
        self.spk = torch.zeros(r, decoder.args.d_vector_dim, 1, dtype=self.voc_dtype, device=device)
        self.params = RowParams(r, device)
        self._true = torch.ones((), dtype=torch.bool, device=device)
        self._row_tensors = [
            self.codes, self.step, self.pos, self.seen, self.hist, self.spk, *self.params.tensors()
        ]  # fmt: skip
        self.reset()
        self.graphs = _Graphs() if config.cuda_graphs else None
        # The vocoder: its own stream and graph pool (it runs while decode graphs run), and the
        # event after its last read of the latent history (rows may not change before it).
        side = config.vocoder_stream and device.type == "cuda"
        # High priority: a window's blocks go before a decode step's (the first audio waits on it).
        self.voc_stream = torch.cuda.Stream(device=device, priority=-1) if side else None
        self.voc_later: torch.cuda.Stream | None = None  # later windows, confined (LATER_WINDOW_SMS)
        if side and LATER_WINDOW_SMS > 0:
            self.voc_later, how = green_stream(LATER_WINDOW_SMS, device)
            logger.info("later vocoder windows on %d multiprocessors: %s", LATER_WINDOW_SMS, how)
        # The last vocoder batch's stream and end: the two vocoder streams share the graphs' memory
        # pool and the static inputs, so a batch on one first waits for the other's last.
        self._voc_last: tuple[torch.cuda.Stream, torch.cuda.Event] | None = None
        self.voc_graphs = _Graphs() if config.cuda_graphs else None
        self._history_read: torch.cuda.Event | None = None
        self.buckets = config.buckets or config.cuda_graphs
        # Prefill inputs (static when graphed), a row per newcomer: ints [pb, T + 2 + 7] (the text
        # framed by the host, [START] ids [STOP] right-padded to T + 2 as `GPT.framed_text` does,
        # then the ADM_FIELDS: target row, top_k, seed, min_new, do_sample, the start code's
        # position and the prompt's length), floats [pb, 3] (temperature, top_p, repetition
        # penalty), the voices' latents [pb, 32, dim] and speaker embeddings [pb, 512, 1]. Each
        # has two pinned host twins, used in turn (one may still be in flight). Whatever the host
        # knows is computed there: each is a kernel fewer before the first code.
        pb = max(config.prefill_batches)
        self.text_width = config.max_prompt - a.cond_latents - 3
        self.adm_col = {name: self.text_width + 2 + i for i, name in enumerate(ADM_FIELDS)}
        self.adm_int = torch.zeros(pb, self.text_width + 2 + len(ADM_FIELDS), dtype=torch.long, device=device)
        self.adm_int[:, self.adm_col["row"]] = self.scratch  # (capture warm-ups write the scratch row)
        with torch.inference_mode():
            self.start_emb = self.gpt.start_embedding()  # [dim]: the same in every prompt
        self.adm_float = torch.ones(pb, 3, dtype=torch.float32, device=device)
        self.adm_cond = torch.zeros(pb, a.cond_latents, self.dim, dtype=self.dtype, device=device)
        self.adm_spk = torch.zeros(pb, *self.spk.shape[1:], dtype=self.voc_dtype, device=device)
        pinned = device.type == "cuda"
        self._adm_host = [
            tuple(
                torch.zeros(x.shape, dtype=x.dtype, pin_memory=pinned)
                for x in (self.adm_int, self.adm_float, self.adm_cond, self.adm_spk)
            )
            for _ in range(2)
        ]
        self._adm_sent: list[torch.cuda.Event | None] = [None, None]
        self._adm_tick = 0
        # A fresh row's repetition mask: the reference's generate() sees placeholder ids "1" for the
        # prefix and the start code; its repetition penalty covers both from the first step.
        self._seen_start = torch.zeros(self.vocab, dtype=torch.bool, device=device)
        self._seen_start[[1, a.gpt_start_audio_token]] = True
        # Vocoder inputs (static when graphed): each (batch, frames) bucket's index layout, one
        # int64 and one float32 array holding any bucket's, with a ring of pinned host twins.
        vb, vf = max(config.vocoder_batches), max(config.vocoder_frames)
        scales = decoder.interpolation_scales
        self.voc_layouts = {
            (b, f): WindowBatch(b, f, level_caps(f, scales))
            for b in config.vocoder_batches
            for f in config.vocoder_frames
        }
        ni = max(x.int_size for x in self.voc_layouts.values())
        nf = max(x.float_size for x in self.voc_layouts.values())
        self.voc_int = torch.zeros(ni, dtype=torch.long, device=device)
        self.voc_float = torch.zeros(nf, dtype=torch.float32, device=device)
        self._voc_host = [
            (torch.zeros(ni, dtype=torch.long, pin_memory=pinned), torch.zeros(nf, pin_memory=pinned))
            for _ in range(VOCODER_UPLOADS)
        ]
        self._voc_sent: list[torch.cuda.Event | None] = [None] * VOCODER_UPLOADS
        self._voc_tick = 0
        self.frames_in = torch.zeros(
            vb, decoder.args.decoder_input_dim, vf, dtype=self.voc_dtype, device=device
        )
        self.g_in = torch.zeros(vb, decoder.args.d_vector_dim, 1, dtype=self.voc_dtype, device=device)

    # --- the three model calls -------------------------------------------------------------------

    def _fused(self, b: int) -> bool:
        return b <= self.config.fused_batches

    def _decode_fn(self, b: int, s: int) -> Callable[[], torch.Tensor]:
        gpt = self.gpt
        rows = torch.arange(b, device=self.device)
        params = self.params.rows(0, b)
        fused = self._fused(b)
        c = self.config

        def step() -> torch.Tensor:
            k = self.step[:b]
            if fused:  # five Triton kernels a layer, the final norms in the head's prologue
                latent, logits = fused_decode().decode_step(
                    gpt, self.codes[:b], k, self.pos[:b], self.cache.kv, self.mel_positions - 1
                )
            else:
                emb = gpt.audio_embedding(self.codes[:b, None], k.clamp(max=self.mel_positions - 1)[:, None])
                hidden = gpt.decode(emb, self.pos[:b], self.cache, s)  # [b, dim]
                latent = gpt.latents(hidden)
                logits = gpt.logits(latent)  # [b, vocab] in the model's dtype
            if c.fused_sampler:  # the lines below, in one kernel
                fused_sampler().choose_and_advance(
                    logits, latent, seen=self.seen[:b], step=k, pos=self.pos[:b], codes=self.codes[:b],
                    hist=self.hist, params=params, stop_token=self.stop, max_new=c.max_new,
                    last_pos=c.seq_len - 1,
                )  # fmt: skip
                return self.codes[:b]
            code = choose_codes(logits.float(), self.seen[:b], k, params, self.stop)
            self.hist[rows, k.clamp(max=self.config.max_new)] = latent
            self.seen.index_put_((rows, code), self._true)  # a device scalar: no host copy in a graph
            self.codes[:b] = code
            # Rows past the live ones keep stepping on stale state: clamp so they stay in bounds.
            self.step[:b] = (k + 1).clamp(max=self.config.max_new)
            self.pos[:b] = (self.pos[:b] + 1).clamp(max=self.config.seq_len - 1)
            return code

        return step

    @torch.inference_mode()
    def decode(self, n: int, attend: int) -> torch.Tensor:
        """One decode step for rows [0, n), whose longest needs `attend` positions (its pos + 1).
        Returns the chosen codes of rows [0, >= n) on the device (a graph's static output)."""
        if not self.buckets:
            return self._decode_fn(n, attend)()
        b = _bucket(n, self.config.decode_batches)
        s = _bucket(attend, self.config.attend_buckets)
        assert b is not None and s is not None, (n, attend)
        if self._fused(b):
            s = self.config.attend_buckets[-1]  # the fused step reads each row's own length: one graph
        return self._call(("decode", b, s), self._decode_fn)  # type: ignore[return-value]

    def _call(self, key: tuple[str, int, int], make: Callable[[int, int], Callable[[], object]]) -> object:
        # (the key names its graph; without graphs, `make` builds the same call to run eagerly)
        """Replay the key's graph, or run the same padded shapes eagerly."""
        graphs = self.voc_graphs if key[0].startswith("vocoder") else self.graphs
        if graphs is not None:
            return graphs.run(key)
        return make(key[1], key[2])()

    def _prefill_fn(self, b: int, p: int) -> Callable[[], None]:
        gpt = self.gpt
        latents, c = gpt.args.cond_latents, self.adm_col
        ar = torch.arange(b, device=self.device)
        zero = torch.zeros(b, dtype=torch.long, device=self.device)
        choose = fused_sampler().choose_codes if self.config.fused_sampler else choose_codes
        fused = self.config.fused_prefill

        def prefill() -> None:
            ints, floats = self.adm_int[:b], self.adm_float[:b]
            rows, last = ints[:, c["row"]], ints[:, c["last"]]  # padding rows: the scratch row
            # Prompts of p positions: the framed text's first p - latents - 1 ([START] .. [STOP]).
            prompts = gpt.embedded_prompts(
                self.adm_cond[:b], ints[:, : p - latents - 1], self.start_emb, ar, last
            )
            if fused:
                hidden, qkv = fused_prefill().prefill(gpt, prompts)  # qkv [L, b, p, 3, H, D]
                self.cache.kv[:, :, rows, :, :p] = qkv[:, :, :, 1:].permute(0, 3, 1, 4, 2, 5)
            else:
                hidden, keys, values = gpt.prefill(prompts)
                self.cache.k[:, rows, :, :p] = keys
                self.cache.v[:, rows, :, :p] = values  # (views of cache.kv)
            latent = gpt.latents(hidden[ar, last])  # at the start code: [b, dim]
            logits = gpt.logits(latent).float()
            top_k, seed, least, sample = (ints[:, c[x]] for x in ("top_k", "seed", "min_new", "sample"))
            columns = (floats[:, 0], top_k, floats[:, 1], floats[:, 2], sample != 0, seed, least)
            for dst, src in zip(self.params.tensors(), columns, strict=True):  # (RowParams.tensors' order)
                dst.index_copy_(0, rows, src)
            seen = self._seen_start.expand(b, -1)
            # (the newcomers' own parameters, as RowParams views: no gather of what was just copied)
            code = choose(logits, seen, zero, RowParams.of(columns), self.stop)
            self.seen.index_copy_(0, rows, seen)
            self.seen.index_put_((rows, code), self._true)  # a device scalar: no host copy in a graph
            self.hist[:, 0].index_copy_(0, rows, latent)
            self.spk.index_copy_(0, rows, self.adm_spk[:b])
            self.codes.index_copy_(0, rows, code)
            self.step.index_fill_(0, rows, 1)
            self.pos.index_copy_(0, rows, ints[:, c["pos"]])  # the prompt's length

        return prefill

    @torch.inference_mode()
    def prefill(
        self,
        first_row: int,
        texts: Sequence[Sequence[int]],
        cond_latents: Sequence[torch.Tensor],
        speakers: Sequence[torch.Tensor],
        params: Sequence[tuple[float, int, float, float, bool, int, int]],
    ) -> None:
        """Start newcomers in rows first_row..: text ids, voice latents [1, 32, dim], speaker
        embeddings [1, 512, 1] and sampling parameters (temperature, top_k, top_p,
        repetition_penalty, do_sample, seed, min_new) of each. Runs their prompts and chooses each
        one's first code (step 0): the rows are then ready to decode."""
        n = len(texts)
        longest = self.gpt.args.cond_latents + max(len(x) for x in texts) + 3
        if not self.buckets:
            b, p = n, longest
        else:
            shape = self.config.prefill_shape(n, longest)
            assert shape is not None, (n, longest)
            b, p = shape
        self._history_settled()
        k = self._adm_tick % 2
        self._adm_tick += 1
        sent = self._adm_sent[k]
        if sent is not None:
            sent.synchronize()  # its last copy (two admissions ago) has left the host buffers
        host_int, host_float, host_cond, host_spk = self._adm_host[k]
        a, c = self.gpt.args, self.adm_col
        ints, floats = host_int.numpy(), host_float.numpy()
        # Padding rows: an empty text into the scratch row.
        ints[:b] = 0
        ints[:b, :2] = (a.gpt_start_text_token, a.gpt_stop_text_token)
        ints[:b, c["row"]] = self.scratch
        ints[:b, c["last"]] = a.cond_latents + 2
        ints[:b, c["pos"]] = a.cond_latents + 3
        floats[:b] = 1.0
        for i, ids in enumerate(texts):
            ints[i, 1 : len(ids) + 1] = ids
            ints[i, len(ids) + 1] = a.gpt_stop_text_token  # [START] ids [STOP], then zeros
        lengths = np.array([len(ids) for ids in texts])
        ints[:n, c["row"]] = np.arange(first_row, first_row + n)
        fields = [(top_k, seed, least, sample) for _, top_k, _, _, sample, seed, least in params]
        ints[:n, c["top_k"] : c["sample"] + 1] = fields
        ints[:n, c["last"]] = a.cond_latents + lengths + 2  # the start code's position
        ints[:n, c["pos"]] = a.cond_latents + lengths + 3  # the prompt's length
        floats[:n] = [(temperature, top_p, penalty) for temperature, _, top_p, penalty, *_ in params]
        pinned = self.device.type == "cuda"
        self.adm_int[:b].copy_(host_int[:b], non_blocking=pinned)
        self.adm_float[:b].copy_(host_float[:b], non_blocking=pinned)
        for voices, host, dev in (
            (cond_latents, host_cond, self.adm_cond),
            (speakers, host_spk, self.adm_spk),
        ):
            # (one voice, the usual admission at low load: no concatenation, one copy fewer)
            if all(v.device.type == "cpu" for v in voices):
                host[:n].copy_(voices[0] if n == 1 else torch.cat(list(voices)))  # (to the buffer's dtype)
                dev[:n].copy_(host[:n], non_blocking=pinned)
            else:
                dev[:n].copy_(voices[0] if n == 1 else torch.cat([v.to(self.device) for v in voices]))
        if pinned:
            self._adm_sent[k] = torch.cuda.Event()
            self._adm_sent[k].record()  # type: ignore[union-attr]
        if not self.buckets:
            self._prefill_fn(b, p)()
        else:
            self._call(("prefill", b, p), self._prefill_fn)

    def _vocoder_fn(self, b: int, f: int, ends: bool = False) -> Callable[[], torch.Tensor]:
        decoder = self.model.hifigan_decoder
        layout = self.voc_layouts[(b, f)]
        ints, floats = self.voc_int[: layout.int_size], self.voc_float[: layout.float_size]

        def run() -> torch.Tensor:
            # The windows' frames from the latent history, then the generator (one graph).
            if self.config.fused_frames:
                fused_frames().frames_into(layout, self.hist, ints, floats, self.frames_in[:b, :, :f])
            else:
                self.frames_in[:b, :, :f].copy_(layout.frames(self.hist, ints, floats).transpose(1, 2))
            self.g_in[:b] = self.spk[layout.speakers(ints)]
            lengths = layout.lengths(ints) if ends else None
            return decoder.generate(self.frames_in[:b, :, :f], self.g_in[:b], lengths).reshape(b, -1)

        return run

    def _window_frames(self, plan: WindowPlan, row: int) -> torch.Tensor:
        """One window's generator input frames [1, C, frames], eagerly (outside the buckets)."""
        rows = np.full(plan.latents[1] - plan.latents[0], row)
        row_dev, pos_dev = to_device_all([rows, np.arange(*plan.latents)], self.device)
        return window_frames([plan], self.hist[row_dev, pos_dev]).T[None].to(self.voc_dtype)

    @torch.inference_mode()
    def vocode_launch(self, windows: Sequence[tuple[WindowPlan, int]], first: bool = True) -> VocodeJob:
        """Queue the decoding of windows, each (plan, its stream's row), reading the latents from
        the row's history (in stream order, before any later row move); the samples come back to
        pinned host memory without the host waiting (see `vocode_collect`). Windows are padded to
        a length bucket and run batched (in graphs when graphed, their frames built inside the
        graph: `vocoder_batch`); a batch holding a window at an utterance's end runs the masked
        generator, which decodes each row as if cut at its own length (exact at the end).
        first: the batch holds a stream's first window (else, with LATER_WINDOW_SMS, it may run on
        the confined stream)."""
        job = VocodeJob([None] * len(windows), [], None)
        if self.voc_stream is None:
            self._vocode_launch(windows, job, None)
            return job
        stream = self.voc_stream if first or self.voc_later is None else self.voc_later
        decoding = torch.cuda.current_stream(self.device)
        with torch.cuda.stream(stream):
            if self._voc_last is not None and self._voc_last[0] is not stream:
                stream.wait_event(self._voc_last[1])  # (before the uploads into the static inputs)
            self._vocode_launch(windows, job, decoding)
        assert job.done is not None  # (a vocoder stream: on a GPU, pinned)
        self._voc_last = (stream, job.done)
        return job

    def _vocode_launch(
        self, windows: Sequence[tuple[WindowPlan, int]], job: VocodeJob, writer: torch.cuda.Stream | None
    ) -> None:
        """writer: the stream whose queued steps write the latents (None: this one). The current
        stream waits for it once, before the first read of the history or the speaker embeddings:
        the index uploads go ahead of that wait, off the decode step's path."""
        waiting = writer

        def latents_written() -> None:
            nonlocal waiting
            if waiting is not None:
                torch.cuda.current_stream(self.device).wait_stream(waiting)
                waiting = None

        decoder = self.model.hifigan_decoder
        pinned = self.device.type == "cuda"
        padded = []
        for i, (plan, row) in enumerate(windows):
            f = _bucket(plan.frames, self.config.vocoder_frames)
            if f is None or not self.buckets or not self.voc_layouts[(1, f)].fits(plan):
                latents_written()
                wav = decoder.generate(self._window_frames(plan, row), self.spk[row : row + 1]).reshape(-1)
                job.out[i] = plan.take(wav).float().cpu().numpy()
            else:
                padded.append((i, f))
        padded.sort(key=lambda x: x[1])
        most = max(self.config.vocoder_batches)
        while padded:
            f = padded[0][1]
            group = [i for i, gf in padded if gf == f][:most]
            padded = padded[len(group) :]  # sorted by f: the group is the head
            b = _bucket(len(group), self.config.vocoder_batches)
            assert b is not None
            plans = [windows[i][0] for i in group]
            layout = self.voc_layouts[(b, f)]
            self._voc_upload(layout, plans, [windows[i][1] for i in group])
            latents_written()
            ends = any(p.at_end for p in plans)
            key = ("vocoder_end" if ends else "vocoder", b, f)
            wav = self._call(key, functools.partial(self._vocoder_fn, ends=ends))  # type: ignore[assignment]
            # Out of the graph's static output before the next replay overwrites it (stream order).
            host = torch.empty((len(group), wav.shape[1]), dtype=wav.dtype, pin_memory=pinned)
            host.copy_(wav[: len(group)], non_blocking=pinned)
            job.groups.append((group, plans, host))
        if pinned:
            self._history_read = torch.cuda.Event()  # (after the last read of the history)
            self._history_read.record()
            job.done = torch.cuda.Event()
            job.done.record()

    def _voc_upload(self, layout: WindowBatch, plans: Sequence[WindowPlan], rows: Sequence[int]) -> None:
        """The batch's index arrays into the static vocoder inputs: packed in the next pinned host
        twin (waiting, rarely, for its last copy to have left), then one copy each."""
        k = self._voc_tick % VOCODER_UPLOADS
        self._voc_tick += 1
        sent = self._voc_sent[k]
        if sent is not None:
            sent.synchronize()
        host_int, host_float = self._voc_host[k]
        layout.pack(plans, rows, self.scratch, host_int.numpy(), host_float.numpy())
        pinned = self.device.type == "cuda"
        self.voc_int[: layout.int_size].copy_(host_int[: layout.int_size], non_blocking=pinned)
        self.voc_float[: layout.float_size].copy_(host_float[: layout.float_size], non_blocking=pinned)
        if pinned:
            self._voc_sent[k] = torch.cuda.Event()
            self._voc_sent[k].record()  # type: ignore[union-attr]

    def decode_after(self, job: VocodeJob) -> None:
        """Queue the next decode steps behind a launched vocoder batch (on the GPU; the host does
        not wait). Nothing to do without a vocoder stream: there it ran before them."""
        if job.done is not None and self.voc_stream is not None:
            torch.cuda.current_stream(self.device).wait_event(job.done)

    @staticmethod
    def vocode_done(job: VocodeJob) -> bool:
        """Whether a launched job's samples are on the host (without waiting)."""
        return job.done is None or job.done.query()

    def vocode_collect(self, job: VocodeJob) -> list[np.ndarray]:
        """Wait for a launched job's samples -> each window's new samples (float32, on the host)."""
        if job.done is not None:
            job.done.synchronize()
        for group, plans, host in job.groups:
            for j, (i, p) in enumerate(zip(group, plans, strict=True)):
                job.out[i] = p.take(host[j]).float().numpy()
        return job.out  # type: ignore[return-value]

    # --- rows ------------------------------------------------------------------------------------

    def _history_settled(self) -> None:
        """Make the decode stream wait until the vocoder's queued reads of the latent history are
        done, before a row's history is overwritten (a move, a newcomer)."""
        if self.voc_stream is not None and self._history_read is not None:
            torch.cuda.current_stream(self.device).wait_event(self._history_read)

    @torch.inference_mode()
    def move_row(self, src: int, dst: int, filled: int) -> None:
        """Move a stream from row src to row dst (its first `filled` cache positions)."""
        self._history_settled()
        self.cache.kv[:, :, dst, :, :filled] = self.cache.kv[:, :, src, :, :filled]
        for t in self._row_tensors:
            t[dst] = t[src]

    def reset(self) -> None:
        """Every row empty, with neutral sampling parameters (rows past the live ones are stepped
        too, and must stay finite)."""
        for t in self._row_tensors:
            t.zero_()
        for t in (self.params.temperature, self.params.top_p, self.params.repetition_penalty):
            t.fill_(1.0)

    # --- start-up --------------------------------------------------------------------------------

    @torch.inference_mode()
    def capture(self) -> None:
        """Capture every bucket's graph (a GPU's start-up cost, once)."""
        if self.graphs is None:
            return
        # Nothing else may touch CUDA while a graph is captured: collect garbage now (a pinned
        # host block freed mid-capture queries its event, which capture forbids) and pause the GC.
        gc.collect()
        torch.cuda.synchronize(self.device)
        # Let cuDNN time its algorithms for each vocoder shape (at the warm-up before each capture):
        # its heuristic choice for channels-last convolutions is several times too slow at some
        # batch and length buckets.
        torch.backends.cudnn.benchmark = True
        gc.disable()
        try:
            self._capture_all()
        finally:
            gc.enable()

    def _capture_all(self) -> None:
        assert self.graphs is not None and self.voc_graphs is not None
        started = time.perf_counter()
        c = self.config
        for b in c.prefill_batches:
            for p in c.prompt_buckets:
                if c.prefill_shape(b, p) != (b, p):
                    continue  # over the token budget: never used
                self.graphs.capture(("prefill", b, p), self._prefill_fn(b, p))
        for b in c.decode_batches:
            for s in c.attend_buckets[-1:] if self._fused(b) else c.attend_buckets:
                self.graphs.capture(("decode", b, s), self._decode_fn(b, s))
        for b in c.vocoder_batches:
            for f in c.vocoder_frames:
                self._voc_upload(self.voc_layouts[(b, f)], [], [])  # padding only: full-length rows
                self.voc_graphs.capture(("vocoder", b, f), self._vocoder_fn(b, f))
                self.voc_graphs.capture(("vocoder_end", b, f), self._vocoder_fn(b, f, ends=True))
        # The warm-ups stepped rows on zero state: start every row clean.
        self.reset()
        torch.cuda.synchronize(self.device)
        logger.info(
            "captured %d CUDA graphs in %.1f s",
            len(self.graphs.graphs) + len(self.voc_graphs.graphs),
            time.perf_counter() - started,
        )
