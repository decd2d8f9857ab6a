"""A CUDA stream confined to some of the GPU's multiprocessors (a green context).

Why: work queued on a second stream competes with the decode steps for multiprocessors; confined to
a few of them it leaves the rest to the steps (used for vocoder windows that have slack, see
`runner.LATER_WINDOW_SMS`). Green contexts need a CUDA 12.8+ driver and, in recent torch, the
cuda.bindings package; torch's API for them changed between releases, so both forms are tried.
"""

from __future__ import annotations

import torch


def green_stream(sms: int, device: torch.device) -> tuple[torch.cuda.Stream | None, str]:
    """A stream whose kernels run on `sms` multiprocessors of `device` -> (stream, how it was made),
    or (None, why not) where this torch, driver or device has no green contexts."""
    try:
        from torch.cuda.green_contexts import GreenContext
    except ImportError as e:
        return None, f"no torch.cuda.green_contexts: {e}"
    try:
        ctx = GreenContext.create(num_sms=sms, device_id=torch.device(device).index or 0)
        if hasattr(ctx, "Stream"):  # torch >= 2.12
            return ctx.Stream(), "GreenContext.Stream()"
        # Earlier releases: a stream created while the green context is current belongs to it.
        ctx.set_context()
        try:
            stream = torch.cuda.Stream(device=device)
        finally:
            ctx.pop_context()
        return stream, "GreenContext.set_context(), then torch.cuda.Stream()"
    except Exception as e:  # no green contexts here: the caller runs on the whole GPU
        return None, f"{type(e).__name__}: {e}"
