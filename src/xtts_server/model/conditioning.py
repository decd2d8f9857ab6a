"""Voice conditioning: mel spectrogram -> 32 latent vectors that the GPT reads before the text.

ConditioningEncoder: a 1x1 conv then six self-attention blocks over time (the Tortoise design).
PerceiverResampler: 32 learned queries cross-attend to the encoder output, twice, with GEGLU
feed-forwards, so any clip length becomes exactly 32 vectors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def _group_count(channels: int) -> int:
    """The release's rule for GroupNorm groups (32 for wide layers, fewer for narrow ones)."""
    groups = 32
    if channels <= 16:
        groups = 8
    elif channels <= 64:
        groups = 16
    while channels % groups:
        groups //= 2
    return groups


class GroupNormFP32(nn.GroupNorm):
    """GroupNorm computed in float32 whatever the input dtype (the release does this for stability)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.group_norm(x.float(), self.num_groups, self.weight.float(), self.bias.float(), self.eps).to(
            x.dtype
        )


class AttentionBlock(nn.Module):
    """Self-attention over time on [B, C, T] with 1x1 convs as projections."""

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = GroupNormFP32(_group_count(channels), channels)
        self.qkv = nn.Conv1d(channels, channels * 3, 1)
        self.proj_out = nn.Conv1d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, t = x.shape
        x_norm = self.norm(x)
        # Heads are split before q/k/v: the channel layout is [head][q|k|v][head_dim].
        qkv = self.qkv(x_norm).reshape(b * self.heads, 3 * c // self.heads, t)
        q, k, v = qkv.chunk(3, dim=1)  # each [B*H, D, T]
        # Scale split between q and k (1/sqrt(sqrt(D)) each) and softmax in fp32, as the release.
        scale = 1.0 / math.sqrt(math.sqrt(c // self.heads))
        weights = torch.einsum("bct,bcs->bts", q * scale, k * scale)
        weights = torch.softmax(weights.float(), dim=-1).to(weights.dtype)
        h = torch.einsum("bts,bcs->bct", weights, v).reshape(b, c, t)
        # XTTS quirk: the residual adds the *normalised* input (tortoise_norm=False in the release).
        return x_norm + self.proj_out(h)


class ConditioningEncoder(nn.Module):
    def __init__(self, mel_channels: int, dim: int, heads: int, blocks: int = 6) -> None:
        super().__init__()
        self.init = nn.Conv1d(mel_channels, dim, 1)
        self.attn = nn.Sequential(*(AttentionBlock(dim, heads) for _ in range(blocks)))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        """[B, 80, T] -> [B, dim, T]"""
        return self.attn(self.init(mel))


class PerceiverAttention(nn.Module):
    """Cross-attention from the latents to cat(latents, context) (cross_attn_include_queries)."""

    def __init__(self, dim: int, heads: int = 8, head_dim: int = 64) -> None:
        super().__init__()
        self.heads = heads
        inner = heads * head_dim
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, inner * 2, bias=False)
        self.to_out = nn.Linear(inner, dim, bias=False)

    def forward(self, latents: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        b, n, _ = latents.shape
        context = torch.cat([latents, context], dim=1)  # [B, n + T, dim]
        q = self.to_q(latents)
        k, v = self.to_kv(context).chunk(2, dim=-1)
        q, k, v = (t.reshape(b, t.shape[1], self.heads, -1).transpose(1, 2) for t in (q, k, v))
        out = F.scaled_dot_product_attention(q, k, v)  # scale head_dim**-0.5, no mask
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class GEGLU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, gates = x.chunk(2, dim=-1)
        return x * F.gelu(gates)


def geglu_feed_forward(dim: int, mult: int = 4) -> nn.Sequential:
    inner = int(dim * mult * 2 / 3)  # 2730 for dim 1024
    return nn.Sequential(nn.Linear(dim, inner * 2), GEGLU(), nn.Linear(inner, dim))


class PerceiverResampler(nn.Module):
    def __init__(self, dim: int, depth: int = 2, num_latents: int = 32) -> None:
        super().__init__()
        self.latents = nn.Parameter(torch.empty(num_latents, dim))
        self.attn = nn.ModuleList(PerceiverAttention(dim) for _ in range(depth))
        self.ff = nn.ModuleList(geglu_feed_forward(dim) for _ in range(depth))
        self.norm_gamma = nn.Parameter(torch.ones(dim))

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        """[B, T, dim] -> [B, 32, dim]"""
        latents = self.latents.unsqueeze(0).expand(context.shape[0], -1, -1)
        for attn, ff in zip(self.attn, self.ff, strict=True):
            latents = attn(latents, context) + latents
            latents = ff(latents) + latents
        # RMSNorm as the release writes it: unit L2 norm, times sqrt(dim), times gamma.
        return F.normalize(latents, dim=-1) * math.sqrt(latents.shape[-1]) * self.norm_gamma
