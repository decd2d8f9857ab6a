"""The XTTS vocoder: GPT latents [B, T, 1024] -> 24 kHz waveform, conditioned on a speaker embedding.

`HifiDecoder` upsamples the latents in time (x4 to the 22.05 kHz mel-frame rate, then x24000/22050 to
the 24 kHz frame rate, both linear) and runs a HiFi-GAN generator (Kong et al. 2020, multi-receptive-
field fusion with type-1 residual blocks) whose every upsampling stage also adds a 1x1 projection of
the speaker embedding.

Parameter names equal the release's `hifigan_decoder.waveform_decoder.*` keys without the
`hifigan_decoder.` prefix, with weight norm folded into a plain `.weight` (the release recomputes
g * v / |v| at every forward; folding it once at load gives the same weights).

For streaming, the two steps are separate: `upsample_latents` (frames are final once a few latents
follow them, see `final_frames`) and `generate`, which is fully convolutional, so a window of frames
with `receptive_field(args)` frames of context on each side (13 and 13 for the release) decodes its
centre exactly like the full sequence does (`generate_range`).
"""

from __future__ import annotations

import functools
import importlib.util
import math
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

LRELU_SLOPE = 0.1  # inside the generator
POST_LRELU_SLOPE = 0.01  # the release's last activation uses leaky_relu's default slope, not 0.1
CONV_PRE_KERNEL = 7
CONV_POST_KERNEL = 7
# Default of `HifiganGenerator.parallel` on CUDA devices: a window of 128 frames alone takes 0.82
# instead of 1.05 ms on an H100, and c = 1 TTFA 15.9 instead of 16.3 ms (BENCHMARKS.md, session 12).
PARALLEL_BLOCKS = True
# ... for batches of at most this many windows: a larger batch fills the GPU with each kernel
# already, and three blocks' activations alive at once would grow the graphs' memory.
PARALLEL_MAX_BATCH = 4


@dataclass(frozen=True)
class HifiDecoderArgs:
    """Sizes of the vocoder (the reference's HifiDecoder arguments). Defaults are the released model's."""

    input_sample_rate: int = 22050  # rate the GPT codes were trained at
    output_sample_rate: int = 24000
    output_hop_length: int = 256  # samples per mel frame
    ar_mel_length_compression: int = 1024  # samples at input_sample_rate per GPT latent
    decoder_input_dim: int = 1024  # GPT latent width
    upsample_initial_channel: int = 512  # halved at every upsampling stage
    upsample_rates: tuple[int, ...] = (8, 8, 2, 2)  # product = output samples per frame (256)
    upsample_kernel_sizes: tuple[int, ...] = (16, 16, 4, 4)
    resblock_kernel_sizes: tuple[int, ...] = (3, 7, 11)
    resblock_dilation_sizes: tuple[tuple[int, ...], ...] = ((1, 3, 5), (1, 3, 5), (1, 3, 5))
    d_vector_dim: int = 512  # speaker embedding width
    cond_d_vector_in_each_upsampling_layer: bool = True  # add the embedding after every upsampling

    @property
    def samples_per_frame(self) -> int:
        """Output samples the generator makes per input frame (after the latent interpolation)."""
        return math.prod(self.upsample_rates)

    def validate(self) -> None:
        if len(self.upsample_rates) != len(self.upsample_kernel_sizes):
            raise ValueError("upsample_rates and upsample_kernel_sizes must have the same length")
        if len(self.resblock_kernel_sizes) != len(self.resblock_dilation_sizes):
            raise ValueError("resblock_kernel_sizes and resblock_dilation_sizes must have the same length")
        for rate, kernel in zip(self.upsample_rates, self.upsample_kernel_sizes, strict=True):
            if (kernel - rate) % 2 or kernel < rate:
                raise ValueError(
                    f"upsampling kernel {kernel} with stride {rate} would not give rate x length"
                )
        if any(k % 2 == 0 for k in self.resblock_kernel_sizes):
            raise ValueError("resblock kernel sizes must be odd")
        if self.upsample_initial_channel % 2 ** len(self.upsample_rates):
            raise ValueError("upsample_initial_channel must stay an integer through all halvings")


class ReceptiveField(NamedTuple):
    """Context, in generator input frames, that one frame's output samples depend on."""

    left: int
    right: int


def receptive_field(args: HifiDecoderArgs) -> ReceptiveField:
    """Frames of context the generator needs on each side so a window decodes like the full input.

    Output samples of input frame 0 are [0, hop). Walking the network backwards from them:
    conv_post (kernel 7) widens the interval by 3 each side; each upsampling stage's MRF widens it by
    its widest residual block, sum over dilations d of (k - 1) / 2 * (d + 1) (a dilated conv followed
    by an undilated one); the transposed conv (stride u, kernel k, padding p) maps output positions
    [lo, hi] to input positions [ceil((lo + p - k + 1) / u), floor((hi + p) / u)]; conv_pre adds 3.
    The release gives (13, 13): 13 frames of 256 samples at 24 kHz (139 ms) each side.
    """
    lo, hi = 0, args.samples_per_frame - 1
    post = (CONV_POST_KERNEL - 1) // 2
    lo, hi = lo - post, hi + post
    for rate, kernel in reversed(list(zip(args.upsample_rates, args.upsample_kernel_sizes, strict=True))):
        mrf = max(
            sum((k - 1) // 2 * (d + 1) for d in dilations)
            for k, dilations in zip(args.resblock_kernel_sizes, args.resblock_dilation_sizes, strict=True)
        )
        lo, hi = lo - mrf, hi + mrf
        pad = (kernel - rate) // 2
        lo, hi = -((-(lo + pad - kernel + 1)) // rate), (hi + pad) // rate  # ceil, floor
    pre = (CONV_PRE_KERNEL - 1) // 2
    return ReceptiveField(left=-(lo - pre), right=hi + pre)


class ResBlock(nn.Module):
    """HiFi-GAN residual block type 1: per dilation d, x + conv(lrelu(conv_d(lrelu(x))))."""

    def __init__(self, channels: int, kernel_size: int, dilations: tuple[int, ...]):
        super().__init__()
        self.convs1 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, dilation=d, padding=(kernel_size - 1) // 2 * d)
            for d in dilations
        )
        self.convs2 = nn.ModuleList(
            nn.Conv1d(channels, channels, kernel_size, padding=(kernel_size - 1) // 2) for _ in dilations
        )

    def forward(
        self,
        x: torch.Tensor,
        mask: torch.Tensor | None = None,
        act: torch.Tensor | None = None,
        fused: bool = False,
    ) -> torch.Tensor:
        """act: lrelu(x) * mask when the caller has it (a stage's blocks share their input). fused:
        each convolution's bias, residual and the next activation in one Triton kernel
        (`fused_hifigan`; channels-last tensors on a GPU), same values."""
        a = act if act is not None else _masked(F.leaky_relu(x, LRELU_SLOPE), mask)
        last = len(self.convs1) - 1
        for i, (conv1, conv2) in enumerate(zip(self.convs1, self.convs2, strict=True)):
            if not fused:
                h = _conv(conv1, a)
                x = _conv(conv2, _masked(F.leaky_relu(h, LRELU_SLOPE), mask)) + x
                if i < last:
                    a = _masked(F.leaky_relu(x, LRELU_SLOPE), mask)
                continue
            from xtts_server.model.fused_hifigan import epilogue

            b1, b2 = conv1.bias, conv2.bias
            assert isinstance(b1, torch.Tensor) and isinstance(b2, torch.Tensor)
            _, h_act = epilogue(_conv(conv1, a, bias=False), b1, LRELU_SLOPE, mask=mask, want_x=False)
            assert h_act is not None
            new_x, new_a = epilogue(
                _conv(conv2, h_act, bias=False), b2, LRELU_SLOPE, residual=x, mask=mask, want_act=i < last
            )
            assert new_x is not None
            x = new_x
            if new_a is not None:
                a = new_a
        return x


def _masked(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else x * mask


@functools.cache
def _have_triton() -> bool:
    return importlib.util.find_spec("triton") is not None


def _conv(conv: nn.Module, x: torch.Tensor, bias: bool = True) -> torch.Tensor:
    """The layer on x [B, C, L], or on x [B, C, 1, L] in channels-last layout as the equivalent 2-d
    convolution. Why: cuDNN's fast half-precision kernels work channels-last; given 1-d (channels-
    first) tensors it transposes every input and output around each convolution, a third of the
    generator's kernel time on an H200 (BENCHMARKS.md). bias=False leaves the bias out (for a
    fused epilogue to add)."""
    if x.dim() == 3:
        assert bias
        return conv(x)
    assert isinstance(conv, nn.Conv1d | nn.ConvTranspose1d)
    # The weight as [.., .., 1, k] channels-last, made once per weight tensor (device and dtype).
    key = (conv.weight.data_ptr(), conv.weight._version, conv.weight.dtype, conv.weight.device)
    cached = conv.__dict__.get("_weight_2d")
    if cached is None or cached[0] != key:
        cached = (key, conv.weight.detach().unsqueeze(2).contiguous(memory_format=torch.channels_last))
        conv.__dict__["_weight_2d"] = cached
    w = cached[1]
    pad = conv.padding[0]
    assert isinstance(pad, int)  # numbers, not "same"/"valid", in this generator
    stride, padding, dilation = (1, conv.stride[0]), (0, pad), (1, conv.dilation[0])
    b = conv.bias if bias else None
    if isinstance(conv, nn.ConvTranspose1d):
        return F.conv_transpose2d(x, w, b, stride, padding, dilation=dilation)
    return F.conv2d(x, w, b, stride, padding, dilation)


class HifiganGenerator(nn.Module):
    """z [B, decoder_input_dim, L] + speaker embedding g [B, d_vector_dim, 1] -> wav [B, 1, L * 256]."""

    def __init__(self, args: HifiDecoderArgs):
        super().__init__()
        channels = args.upsample_initial_channel
        self.num_kernels = len(args.resblock_kernel_sizes)
        self.conv_pre = nn.Conv1d(
            args.decoder_input_dim, channels, CONV_PRE_KERNEL, padding=CONV_PRE_KERNEL // 2
        )
        self.ups = nn.ModuleList()
        self.resblocks = nn.ModuleList()
        for i, (rate, kernel) in enumerate(zip(args.upsample_rates, args.upsample_kernel_sizes, strict=True)):
            c_in, c_out = channels // 2**i, channels // 2 ** (i + 1)
            self.ups.append(nn.ConvTranspose1d(c_in, c_out, kernel, rate, padding=(kernel - rate) // 2))
            for k, dilations in zip(args.resblock_kernel_sizes, args.resblock_dilation_sizes, strict=True):
                self.resblocks.append(ResBlock(c_out, k, dilations))
        # Time resolution of each stage's input, in samples per frame: 1, 8, 64, 128, 256.
        self.scales = [math.prod(args.upsample_rates[:i]) for i in range(len(args.upsample_rates) + 1)]
        c_last = channels // 2 ** len(args.upsample_rates)
        self.conv_post = nn.Conv1d(c_last, 1, CONV_POST_KERNEL, padding=CONV_POST_KERNEL // 2, bias=False)
        self.cond_layer = nn.Conv1d(args.d_vector_dim, channels, 1)
        self.conds: nn.ModuleList | None = None
        # Run as channels-last 2-d convolutions (see `_conv`): None = on CUDA devices.
        self.channels_last: bool | None = None
        # Residual blocks with fused epilogues (`ResBlock.forward`), channels-last only: None = on
        # CUDA devices when Triton is installed.
        self.fused: bool | None = None
        # A stage's residual blocks on parallel CUDA streams (`_blocks_in_parallel`): None = on
        # CUDA devices when the module's PARALLEL_BLOCKS is set, for up to PARALLEL_MAX_BATCH rows.
        self.parallel: bool | None = None
        if args.cond_d_vector_in_each_upsampling_layer:
            self.conds = nn.ModuleList(
                nn.Conv1d(args.d_vector_dim, channels // 2 ** (i + 1), 1) for i in range(len(self.ups))
            )

    def forward(self, z: torch.Tensor, g: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """`lengths` [B] (frames): each row ends there, and decodes as if cut there, although the
        batch is padded past it. Every convolution zero-pads at the sequence end; zeroing each
        convolution's input past the row's end reproduces that inside a longer padded row."""
        # On a GPU the activations run as [B, C, 1, L] channels-last (see `_conv`); same values.
        four_d = self.channels_last if self.channels_last is not None else z.is_cuda
        masks = None
        if lengths is not None:
            positions = torch.arange(z.shape[-1] * self.scales[-1], device=z.device)
            masks = [
                (positions[: z.shape[-1] * scale] < lengths[:, None] * scale)[:, None].to(
                    z.dtype
                )  # [B, 1, T]
                for scale in self.scales
            ]
            if four_d:
                masks = [m[:, :, None] for m in masks]  # [B, 1, 1, T]
        if four_d:
            z = z[:, :, None].contiguous(memory_format=torch.channels_last)
        fused = four_d and (self.fused if self.fused is not None else z.is_cuda and _have_triton())
        parallel = self.parallel_blocks(z.shape[0], z.is_cuda)
        mask = masks[0] if masks else None
        o = _conv(self.conv_pre, _masked(z, mask)) + _expand(self.cond_layer(g), four_d)  # [B, 512, (1,) L]
        for i, up in enumerate(self.ups):
            o = _conv(up, _masked(F.leaky_relu(o, LRELU_SLOPE), mask))  # [B, C / 2, (1,) L * rate]
            mask = masks[i + 1] if masks else None
            if self.conds is not None:
                o = o + _expand(self.conds[i](g), four_d)
            blocks = self.resblocks[i * self.num_kernels : (i + 1) * self.num_kernels]
            act = _masked(F.leaky_relu(o, LRELU_SLOPE), mask)  # every block's first input
            outs = (
                iter(_blocks_in_parallel(blocks, o, mask, act, fused))
                if parallel
                else (block(o, mask, act, fused) for block in blocks)  # (one output alive at a time)
            )
            mrf = next(outs)
            for out in outs:
                mrf += out  # in block order, as the release sums them
            o = mrf / self.num_kernels  # divide (not x 1/3) for the same rounding as the release
        o = _conv(self.conv_post, _masked(F.leaky_relu(o, POST_LRELU_SLOPE), mask))  # [B, 1, (1,) L * 256]
        return torch.tanh(o).reshape(o.shape[0], 1, -1)

    def parallel_blocks(self, batch: int, cuda: bool) -> bool:
        """Whether a run on `batch` windows puts each stage's residual blocks on parallel CUDA
        streams: `parallel` when set, else on CUDA when PARALLEL_BLOCKS is, up to PARALLEL_MAX_BATCH."""
        if self.num_kernels < 2:
            return False
        if self.parallel is not None:
            return self.parallel
        return PARALLEL_BLOCKS and cuda and batch <= PARALLEL_MAX_BATCH


def _blocks_in_parallel(
    blocks: nn.ModuleList, o: torch.Tensor, mask: torch.Tensor | None, act: torch.Tensor, fused: bool
) -> list[torch.Tensor]:
    """Each residual block of a stage on o (and act = its first activation), block 0 on the current
    CUDA stream and the others on side streams of the same priority, joined before returning.

    Why: the blocks are independent (their outputs are only summed), and for one short window each
    of their ~12 kernels fills a fraction of the GPU, so a window is a chain of latency-bound
    kernels; three chains side by side take about the time of one. Inside graph capture the side
    streams fork from and join the capturing stream, so the graph holds three parallel branches.
    Same kernels on the same inputs: the same values.

    Memory: the side streams' outputs are read on the current stream after the join and freed
    there; each later use of a side stream first waits for the current stream, so no block is
    reused while it is still being read."""
    main = torch.cuda.current_stream(o.device)
    side = _side_streams(o.device, main.priority, len(blocks) - 1)
    outs: list[torch.Tensor] = []
    for s in side:
        s.wait_stream(main)
    for block, s in zip(blocks[1:], side, strict=True):
        with torch.cuda.stream(s):
            outs.append(block(o, mask, act, fused))
    first = blocks[0](o, mask, act, fused)
    for s in side:
        main.wait_stream(s)
    return [first, *outs]


_SIDE_STREAMS: dict[tuple[torch.device, int], list[torch.cuda.Stream]] = {}


def _side_streams(device: torch.device, priority: int, n: int) -> list[torch.cuda.Stream]:
    """n CUDA streams of the given priority on device, made once (a graph keeps their handles)."""
    streams = _SIDE_STREAMS.setdefault((device, priority), [])
    while len(streams) < n:
        streams.append(torch.cuda.Stream(device, priority=priority))
    return streams[:n]


def _expand(c: torch.Tensor, four_d: bool) -> torch.Tensor:
    """A per-channel term [B, C, 1] shaped to broadcast over the activations."""
    return c[:, :, None] if four_d else c


class HifiDecoder(nn.Module):
    """GPT latents [B, T, decoder_input_dim] + speaker embedding [B, d_vector_dim, 1] -> wav [B, 1, samples].

    samples = 256 * floor(4 T * 24000 / 22050) for the release.
    """

    def __init__(self, args: HifiDecoderArgs | None = None):
        super().__init__()
        args = args or HifiDecoderArgs()
        args.validate()
        self.args = args
        self.waveform_decoder = HifiganGenerator(args)
        # Generator context in frames, (left, right): see the module function `receptive_field`.
        self.receptive_field: ReceptiveField = receptive_field(args)
        # Two linear interpolations driven by scale_factor (not by output size): PyTorch then maps
        # output j to source (j + 0.5) / scale - 0.5, and that is what the release was run with.
        scales = [args.ar_mel_length_compression / args.output_hop_length]
        if args.output_sample_rate != args.input_sample_rate:
            scales.append(args.output_sample_rate / args.input_sample_rate)
        self.interpolation_scales: tuple[float, ...] = tuple(scales)

    @property
    def hop_length(self) -> int:
        """Output samples per generator frame (256)."""
        return self.args.samples_per_frame

    def scales(self, length_scale: float = 1.0) -> tuple[float, ...]:
        """Interpolation scale factors from latents to generator frames, first to last.

        length_scale (1 / speed) is the reference's speed control, a linear interpolation of the
        latents applied before the decoder when it is not 1 (xtts.py `inference`).
        """
        return ((length_scale,) if length_scale != 1.0 else ()) + self.interpolation_scales

    def upsample_latents(self, latents: torch.Tensor, length_scale: float = 1.0) -> torch.Tensor:
        """[B, T, C] -> generator input frames z [B, C, num_frames(T)]."""
        z = latents.transpose(1, 2)  # [B, C, T]
        for scale in self.scales(length_scale):
            z = F.interpolate(z, scale_factor=[scale], mode="linear", align_corners=False)
        return z

    def num_frames(self, num_latents: int, length_scale: float = 1.0) -> int:
        """Length of `upsample_latents` for `num_latents` latents (F.interpolate's floor(size * scale))."""
        frames = num_latents
        for scale in self.scales(length_scale):
            frames = math.floor(float(frames) * scale)
        return frames

    def final_frames(self, num_latents: int, length_scale: float = 1.0) -> int:
        """How many leading frames of `upsample_latents(latents[:, :num_latents])` keep their value
        whatever latents follow (the release at speed 1: num_frames - 2 or - 3 from 3 latents on).

        Frames past these read a clamped (repeated) last latent. And F.interpolate copies its input
        when floor(size * scale) == size (ATen's equal-size shortcut), which happens to the
        x24000/22050 stage up to 11 frames (2 latents): none of those frames is final.
        """
        frames = num_latents
        for scale in self.scales(length_scale):
            if math.floor(float(frames) * scale) == frames and scale != 1.0:
                return 0
            frames = math.floor(float(frames) * scale)
            if frames <= 0:
                return 0
        # Compare with a longer random probe: a frame that reads the same taps gives the same value
        # (8 more latents move every clamped tap, up to length_scale 20 = the reference's speed 0.05).
        probe = torch.randn(
            1, num_latents + 8, 1, generator=torch.Generator().manual_seed(0)
        )  # [1, T + 8, 1]
        now = self.upsample_latents(probe[:, :num_latents], length_scale)[0, 0]
        later = self.upsample_latents(probe, length_scale)[0, 0, :frames]
        changed = torch.nonzero(now != later).flatten()
        return int(changed[0]) if changed.numel() else frames

    def generate(self, z: torch.Tensor, g: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """Run the generator on frames z [B, C, L] -> wav [B, 1, L * 256]; g is [B, D, 1] or [B, D].
        With `lengths` [B], row b decodes as if it had only its first lengths[b] frames."""
        if g.dim() == 2:
            g = g[:, :, None]
        return self.waveform_decoder(z, g, lengths)

    def generate_range(self, z: torch.Tensor, g: torch.Tensor, start: int, end: int) -> torch.Tensor:
        """Samples of frames [start, end) -> [B, 1, (end - start) * 256], equal to
        `generate(z, g)[..., start * 256 : end * 256]` while decoding only a window around them.

        z holds frames from 0; it must either be the whole sequence or reach at least
        `receptive_field.right` frames past `end` (its last frame is taken as the sequence end).
        """
        length = z.shape[-1]
        if not 0 <= start <= end <= length:
            raise ValueError(f"frame range [{start}, {end}) is outside the {length} frames given")
        left, right = self.receptive_field
        first, last = max(0, start - left), min(length, end + right)
        wav = self.generate(z[..., first:last], g)
        return wav[..., (start - first) * self.hop_length : (end - first) * self.hop_length]

    def forward(self, latents: torch.Tensor, g: torch.Tensor, length_scale: float = 1.0) -> torch.Tensor:
        return self.generate(self.upsample_latents(latents, length_scale), g)
