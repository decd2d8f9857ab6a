"""The whole XTTS v2 network: GPT (with voice conditioning), HiFi-GAN decoder, speaker encoder."""

from __future__ import annotations

import torch
from torch import nn

from xtts_server.model.args import ModelArgs
from xtts_server.model.gpt import GPT
from xtts_server.model.hifigan import HifiDecoder, HifiDecoderArgs
from xtts_server.model.speaker_encoder import SpeakerEncoder


class XTTSModel(nn.Module):
    def __init__(self, args: ModelArgs) -> None:
        super().__init__()
        args.validate()
        self.args = args
        self.gpt = GPT(args)
        self.hifigan_decoder = HifiDecoder(
            HifiDecoderArgs(
                input_sample_rate=args.input_sample_rate,
                output_sample_rate=args.output_sample_rate,
                output_hop_length=args.output_hop_length,
                ar_mel_length_compression=args.gpt_code_stride_len,
                decoder_input_dim=args.decoder_input_dim,
                d_vector_dim=args.d_vector_dim,
                cond_d_vector_in_each_upsampling_layer=args.cond_d_vector_in_each_upsampling_layer,
            )
        )
        self.speaker_encoder = SpeakerEncoder()
        # Per-mel-bin normalisers of the cloning mel, stored in model.pth (mel_stats.pth is not needed).
        self.register_buffer("mel_stats", torch.ones(80))
        self.mel_stats: torch.Tensor
