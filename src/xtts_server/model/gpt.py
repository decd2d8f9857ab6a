"""The XTTS v2 GPT: conditioning, embeddings, a GPT-2 stack on a static KV cache, and the audio head.

Written without transformers. The stack is GPT-2 (pre-LN blocks, gelu_new, fused qkv) with its own
position table removed: XTTS adds learned text and audio positions to the embeddings instead, and the
32 conditioning latents get no position at all.

The KV cache is preallocated (gpt-fast style) and written at explicit positions, so one forward serves
a prefill of many tokens, a one-token decode step, and a batch of streams at different lengths.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from xtts_server.model.args import ModelArgs
from xtts_server.model.conditioning import ConditioningEncoder, PerceiverResampler


class KVCache:
    """Keys and values of every layer for `rows` independent sequences of up to `seq_len` positions.

    Owned by whoever runs the GPT (one per request on the simple path, one for all slots in the
    batching engine), so the model itself holds no per-request state. Zero-filled: positions not yet
    written are masked out, and zeros (unlike uninitialised memory) cannot turn into NaN there."""

    def __init__(
        self, layers: int, rows: int, heads: int, seq_len: int, head_dim: int, dtype: torch.dtype,
        device: torch.device,
    ) -> None:  # fmt: skip
        # Keys and values in one tensor, so a decode step writes both with one indexed copy.
        self.kv = torch.zeros((layers, 2, rows, heads, seq_len, head_dim), dtype=dtype, device=device)
        self.k = self.kv[:, 0]  # [L, R, H, S, D] views
        self.v = self.kv[:, 1]

    @property
    def rows(self) -> int:
        return self.k.shape[1]

    @property
    def seq_len(self) -> int:
        return self.k.shape[3]

    def update(
        self,
        layer: int,
        rows: torch.Tensor,
        pos: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        attend_len: int,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write k, v [B, H, T, D] of `rows` [B] at positions `pos` [B, T]; return each row's keys and
        values for positions [0, attend_len) as [B, H, L, D]."""
        kc, vc = self.k[layer], self.v[layer]  # [R, H, S, D] views
        index = (rows[:, None], slice(None), pos)  # selects [B, T, H, D]
        kc[index] = k.transpose(1, 2)
        vc[index] = v.transpose(1, 2)
        return kc[rows, :, :attend_len], vc[rows, :, :attend_len]


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, layer: int) -> None:
        super().__init__()
        self.heads = heads
        self.layer = layer
        self.c_attn = nn.Linear(dim, 3 * dim)
        self.c_proj = nn.Linear(dim, dim)

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=-1)
        return tuple(y.view(b, t, self.heads, -1).transpose(1, 2) for y in (q, k, v))  # type: ignore[return-value,unused-ignore]

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape  # [B, H, T, D]
        return self.c_proj(y.transpose(1, 2).reshape(b, t, -1))

    def forward(
        self, x: torch.Tensor, cache: KVCache, rows: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        q, k, v = self._qkv(x)  # [B, H, T, D]
        k, v = cache.update(self.layer, rows, pos, k, v, mask.shape[-1])
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # scale 1/sqrt(D), as GPT-2
        return self._out(y)

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Causal self-attention over whole prompts x [B, P, C] with nothing cached before them.
        Right-padded prompts are fine: causality keeps real positions from seeing the pads.
        Returns the output and this layer's keys and values [B, H, P, D] for the cache."""
        q, k, v = self._qkv(x)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self._out(y), k, v

    def decode(
        self, x: torch.Tensor, kv: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        """One new token per row, x [B, 1, C], for cache rows [0, B) (`rows` = arange(B)) of this
        layer's keys and values kv [2, R, H, S, D]: written at `pos` [B], then attended in place
        over positions [0, S') with `bias` [B, 1, 1, S'] (0 where visible, -inf past the row's
        position).

        No gather: kv[:, :B, :, :S'] is a strided view that attention reads as it is, so a step
        reads only the cache it attends to, whatever the cache's capacity."""
        b, _, c = x.shape
        qkv = self.c_attn(x).view(b, 3, self.heads, c // self.heads)  # [B, 3, H, D]
        kv[:, rows, :, pos] = qkv[:, 1:]  # one indexed copy of [B, 2, H, D] (keys and values)
        s = bias.shape[-1]
        q = qkv[:, 0, :, None]  # [B, H, 1, D]
        y = F.scaled_dot_product_attention(q, kv[0, :b, :, :s], kv[1, :b, :, :s], attn_mask=bias)
        return self.c_proj(y.reshape(b, 1, c))  # [B, H, 1, D] is [B, 1, C] in memory


class MLP(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim)
        self.c_proj = nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))  # GPT-2's gelu_new


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, layer: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, layer)
        self.ln_2 = nn.LayerNorm(dim)
        self.mlp = MLP(dim)

    def forward(
        self, x: torch.Tensor, cache: KVCache, rows: torch.Tensor, pos: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache, rows, pos, mask)
        return x + self.mlp(self.ln_2(x))

    def prefill(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        y, k, v = self.attn.prefill(self.ln_1(x))
        x = x + y
        return x + self.mlp(self.ln_2(x)), k, v

    def decode(
        self, x: torch.Tensor, kv: torch.Tensor, rows: torch.Tensor, pos: torch.Tensor, bias: torch.Tensor
    ) -> torch.Tensor:
        x = x + self.attn.decode(self.ln_1(x), kv, rows, pos, bias)
        return x + self.mlp(self.ln_2(x))


class Transformer(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        dim = args.gpt_n_model_channels
        self.h = nn.ModuleList(Block(dim, args.gpt_n_heads, i) for i in range(args.gpt_layers))
        self.ln_f = nn.LayerNorm(dim)


class GPT(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        self.args = args
        dim = args.gpt_n_model_channels
        self.conditioning_encoder = ConditioningEncoder(80, dim, heads=args.gpt_n_heads)
        self.conditioning_perceiver = PerceiverResampler(dim, num_latents=args.cond_latents)
        self.text_embedding = nn.Embedding(args.gpt_number_text_tokens, dim)
        self.text_pos_embedding = nn.Embedding(args.text_positions, dim)
        self.mel_embedding = nn.Embedding(args.gpt_num_audio_tokens, dim)
        self.mel_pos_embedding = nn.Embedding(args.mel_positions, dim)
        self.transformer = Transformer(args)
        self.final_norm = nn.LayerNorm(dim)
        self.mel_head = nn.Linear(dim, args.gpt_num_audio_tokens)

    # --- conditioning and prompt ---------------------------------------------------------------

    def style_latents(self, mel: torch.Tensor) -> torch.Tensor:
        """Normalised cloning mel [B, 80, T] -> conditioning latents [B, 32, dim]."""
        encoded = self.conditioning_encoder(mel)  # [B, dim, T]
        return self.conditioning_perceiver(encoded.transpose(1, 2))

    def prompt(self, cond_latents: torch.Tensor, text_ids: torch.Tensor) -> torch.Tensor:
        """The prefix the audio is generated after: [B, 32, dim] latents, then [START] text [STOP]
        with text positions 0.., then the start-audio token at audio position 0.
        -> [B, 32 + T + 3, dim]"""
        b, t = text_ids.shape
        return self.prompts(cond_latents, text_ids, torch.full((b,), t, device=text_ids.device))

    def prompts(
        self, cond_latents: torch.Tensor, text_ids: torch.Tensor, lengths: torch.Tensor
    ) -> torch.Tensor:
        """`prompt` for texts of different lengths at once: latents [B, 32, dim], right-padded ids
        [B, T] of which row b has lengths[b] -> [B, 32 + T + 3, dim], row b's prompt in its first
        32 + lengths[b] + 3 positions and the padding past it unspecified (a right-padded prefill
        never lets real positions see it)."""
        rows = torch.arange(text_ids.shape[0], device=text_ids.device)
        text = self.framed_text(text_ids, lengths)
        last = cond_latents.shape[1] + lengths + 2
        return self.embedded_prompts(cond_latents, text, self.start_embedding(), rows, last)

    def framed_text(self, text_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Right-padded ids [B, T] (row b has lengths[b]) -> [B, T + 2]: [START] ids [STOP], then
        [START] as padding."""
        b, t = text_ids.shape
        a = self.args
        text = torch.full((b, t + 2), a.gpt_start_text_token, dtype=text_ids.dtype, device=text_ids.device)
        text[:, 1 : t + 1] = text_ids
        text.scatter_(1, (lengths + 1)[:, None], a.gpt_stop_text_token)  # [START] ids [STOP] (pads after)
        return text

    def start_embedding(self) -> torch.Tensor:
        """The start-audio token at audio position 0 -> [dim] (the same for every prompt)."""
        start = torch.full((1, 1), self.args.gpt_start_audio_token, device=self.mel_embedding.weight.device)
        return self.audio_embedding(start, torch.zeros_like(start))[0, 0]

    def embedded_prompts(
        self,
        cond_latents: torch.Tensor,
        text: torch.Tensor,
        start: torch.Tensor,
        rows: torch.Tensor,
        last: torch.Tensor,
    ) -> torch.Tensor:
        """Latents [B, 32, dim], framed text [B, T + 2] (`framed_text`), the start embedding [dim]
        (`start_embedding`), rows = arange(B) and each row's start-code position `last` [B] (32 +
        its length + 2) -> the prompts [B, 32 + T + 3, dim], as `prompts`."""
        b, t2 = text.shape
        # (text positions 0.. are the table's first rows: a slice, not a lookup)
        text_emb = self.text_embedding(text) + self.text_pos_embedding.weight[:t2]
        out = torch.cat([cond_latents.to(text_emb.dtype), text_emb, start.expand(b, 1, -1)], dim=1)
        out[rows, last] = start  # each row's own end
        return out

    def audio_embedding(self, codes: torch.Tensor, audio_pos: torch.Tensor) -> torch.Tensor:
        """Codes [B, T] at audio positions [B, T] (0 = the start token) -> [B, T, dim]"""
        return self.mel_embedding(codes) + self.mel_pos_embedding(audio_pos)

    # --- the stack -------------------------------------------------------------------------------

    def new_cache(self, rows: int, seq_len: int, dtype: torch.dtype, device: torch.device) -> KVCache:
        """A zeroed KV cache for `rows` sequences of up to `seq_len` positions."""
        a = self.args
        return KVCache(a.gpt_layers, rows, a.gpt_n_heads, seq_len, a.head_dim, dtype, device)

    def forward(
        self,
        emb: torch.Tensor,
        pos: torch.Tensor,
        cache: KVCache,
        rows: torch.Tensor,
        attend_len: int | None = None,
    ) -> torch.Tensor:
        """Run the stack on embeddings [B, T, dim] at sequence positions `pos` [B, T] of `cache`
        rows `rows` [B], attending to positions [0, attend_len) of each row (default: all of them).
        Returns the hidden states after GPT-2's own ln_f, [B, T, dim]."""
        seq_len = attend_len if attend_len is not None else cache.seq_len
        # Each position sees every cached position up to its own: causal within the new tokens.
        mask = torch.arange(seq_len, device=pos.device) <= pos[:, :, None]  # [B, T, S]
        mask = mask[:, None]  # [B, 1, T, S]
        x = emb
        for block in self.transformer.h:
            x = block(x, cache, rows, pos, mask)
        return self.transformer.ln_f(x)

    @property
    def blocks(self) -> list[Block]:
        return list(self.transformer.h)  # type: ignore[arg-type]

    def prefill(self, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Whole prompts emb [B, P, dim] (right-padded to a common P) with an empty cache.
        Returns hidden states after ln_f [B, P, dim] and every layer's keys and values
        [L, B, H, P, D], for the caller to place in its cache (the batching engine's path)."""
        x = emb
        keys, values = [], []
        for block in self.blocks:
            x, k, v = block.prefill(x)
            keys.append(k)
            values.append(v)
        return self.transformer.ln_f(x), torch.stack(keys), torch.stack(values)

    def decode(self, emb: torch.Tensor, pos: torch.Tensor, cache: KVCache, attend_len: int) -> torch.Tensor:
        """One token for each of cache rows [0, B): emb [B, 1, dim] written at positions `pos` [B],
        attending to positions [0, attend_len) of its own row (those past its position are masked).
        -> hidden after ln_f [B, dim]. Static shapes for a given (B, attend_len): one CUDA graph each.
        (`fused_decode.decode_step` is the same step in Triton kernels, for small batches.)"""
        visible = torch.arange(attend_len, device=pos.device) <= pos[:, None]  # [B, S']
        bias = torch.zeros(visible.shape, dtype=emb.dtype, device=pos.device)
        bias = bias.masked_fill(~visible, float("-inf"))[:, None, None]  # [B, 1, 1, S']
        rows = torch.arange(emb.shape[0], device=emb.device)
        x = emb
        for i, block in enumerate(self.blocks):
            x = block.decode(x, cache.kv[i], rows, pos, bias)
        return self.transformer.ln_f(x)[:, 0]

    def latents(self, hidden: torch.Tensor) -> torch.Tensor:
        """The vocoder's input: the release applies final_norm after ln_f (two LayerNorms in a row)."""
        return self.final_norm(hidden)

    def logits(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents [B, dim] or [B, T, dim] -> logits over the audio codes."""
        return self.mel_head(latents)
