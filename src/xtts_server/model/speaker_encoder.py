"""The H/ASP ResNet speaker encoder: 16 kHz audio -> a 512-d speaker embedding for the vocoder.

Architecture of the released model (Heo et al. 2020, "H/ASP"; the reference's ResNetSpeakerEncoder):
pre-emphasis -> 64-band mel (16 kHz, n_fft 512, Hamming 400, hop 160) -> log(x + 1e-6) -> instance
norm over time -> ResNet of squeeze-excitation basic blocks ([3, 4, 6, 3] blocks, [32, 64, 128, 256]
filters, stride 2 from the second stage) -> attentive statistics pooling (weighted mean and std) ->
linear 4096 -> 512 -> optional L2 normalisation.

Parameter and buffer names equal the release's `hifigan_decoder.speaker_encoder.*` with that prefix
removed, including the mel front end's buffers (`torch_spec.0.filter`, `torch_spec.1.spectrogram.
window`, `torch_spec.1.mel_scale.fb`). BatchNorm uses its running statistics: call `.eval()` (the
constructor leaves the module in eval mode).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from xtts_server.audio.mel import MelSpectrogram


@dataclass(frozen=True)
class SpeakerEncoderArgs:
    """Sizes of the speaker encoder. Defaults are the released model's."""

    input_dim: int = 64  # mel bands
    proj_dim: int = 512  # embedding width (the vocoder's d_vector_dim)
    layers: tuple[int, ...] = (3, 4, 6, 3)  # SE blocks per stage
    num_filters: tuple[int, ...] = (32, 64, 128, 256)  # channels per stage
    sample_rate: int = 16000
    n_fft: int = 512
    win_length: int = 400  # Hamming window, 25 ms
    hop_length: int = 160  # 10 ms
    preemphasis: float = 0.97
    se_reduction: int = 8  # squeeze-excitation bottleneck = channels // 8
    attention_dim: int = 128  # bottleneck of the pooling attention

    def validate(self) -> None:
        if len(self.layers) != len(self.num_filters):
            raise ValueError("layers and num_filters must have one entry per stage")
        if self.input_dim % 2 ** (len(self.layers) - 1):
            raise ValueError("input_dim must be divisible by the total frequency stride")


class PreEmphasis(nn.Module):
    """y[n] = x[n] - c * x[n - 1], with x[-1] taken as x[1] (reflect padding, as the reference)."""

    filter: torch.Tensor

    def __init__(self, coefficient: float = 0.97):
        super().__init__()
        self.register_buffer(
            "filter", torch.tensor([[[-coefficient, 1.0]]], dtype=torch.float32)
        )  # [1, 1, 2]

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        padded = F.pad(wav[:, None], (1, 0), mode="reflect")  # [B, 1, N + 1]
        return F.conv1d(padded, self.filter)[:, 0]  # [B, N]


class SqueezeExcitation(nn.Module):
    def __init__(self, channels: int, reduction: int):
        super().__init__()
        self.fc = nn.Sequential(
            nn.Linear(channels, channels // reduction),
            nn.ReLU(inplace=True),
            nn.Linear(channels // reduction, channels),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))  # [B, C]
        return x * scale[:, :, None, None]


class SEBasicBlock(nn.Module):
    def __init__(self, in_channels: int, channels: int, stride: int, reduction: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.se = SqueezeExcitation(channels, reduction)
        self.downsample: nn.Sequential | None = None
        if stride != 1 or in_channels != channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, channels, 1, stride=stride, bias=False), nn.BatchNorm2d(channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.bn1(F.relu(self.conv1(x)))  # ReLU before BN: the release was trained this way
        out = self.se(self.bn2(self.conv2(out)))
        return F.relu(out + residual)


class SpeakerEncoder(nn.Module):
    """wav_16k [B, N] (or [B, 1, N]) float32 -> speaker embedding [B, proj_dim]."""

    def __init__(self, args: SpeakerEncoderArgs | None = None):
        super().__init__()
        args = args or SpeakerEncoderArgs()
        args.validate()
        self.args = args
        self.torch_spec = nn.Sequential(
            PreEmphasis(args.preemphasis),
            MelSpectrogram(
                sample_rate=args.sample_rate,
                n_fft=args.n_fft,
                win_length=args.win_length,
                hop_length=args.hop_length,
                n_mels=args.input_dim,
                window_fn=torch.hamming_window,
            ),
        )
        filters = args.num_filters
        self.conv1 = nn.Conv2d(1, filters[0], 3, padding=1)
        self.bn1 = nn.BatchNorm2d(filters[0])
        in_channels = filters[0]
        for i, (blocks, channels) in enumerate(zip(args.layers, filters, strict=True)):
            stride = 1 if i == 0 else 2
            stage = [SEBasicBlock(in_channels, channels, stride, args.se_reduction)]
            stage += [SEBasicBlock(channels, channels, 1, args.se_reduction) for _ in range(1, blocks)]
            self.add_module(f"layer{i + 1}", nn.Sequential(*stage))
            in_channels = channels
        self.num_stages = len(args.layers)
        pooled = filters[-1] * (args.input_dim // 2 ** (self.num_stages - 1))  # channels x mel rows left
        self.attention = nn.Sequential(
            nn.Conv1d(pooled, args.attention_dim, 1),
            nn.ReLU(),
            nn.BatchNorm1d(args.attention_dim),
            nn.Conv1d(args.attention_dim, pooled, 1),
            nn.Softmax(dim=2),
        )
        self.fc = nn.Linear(2 * pooled, args.proj_dim)
        self.eval()

    def features(self, wav: torch.Tensor) -> torch.Tensor:
        """Normalised log mel [B, input_dim, frames] as the ResNet sees it."""
        mel = self.torch_spec(wav)  # [B, 64, frames]
        return F.instance_norm((mel + 1e-6).log(), eps=1e-5)  # per band over time, no affine

    def forward(self, wav: torch.Tensor, l2_norm: bool = True) -> torch.Tensor:
        if wav.dim() == 3:
            wav = wav[:, 0]  # [B, 1, N] -> [B, N]
        x = self.features(wav)[:, None]  # [B, 1, 64, T]
        x = self.bn1(F.relu(self.conv1(x)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)  # [B, C, 64 / 2^i, T / 2^i]
        x = x.reshape(x.shape[0], -1, x.shape[-1])  # [B, 2048, T']
        weights = self.attention(x)  # softmax over time, per channel
        mean = torch.sum(x * weights, dim=2)  # [B, 2048]
        # std from E[x^2] - mean^2, floored as in the release to stay finite on constant input
        std = torch.sqrt((torch.sum(x**2 * weights, dim=2) - mean**2).clamp(min=1e-5))
        emb = self.fc(torch.cat((mean, std), dim=1))  # [B, 512]
        if l2_norm:
            emb = F.normalize(emb, p=2, dim=1)
        return emb
