"""The engine loop: one thread that decodes every live stream together, cut as schedule -> execute ->
update, vLLM-style.

- schedule: drop streams that finished or were cancelled (their rows are reused at once, the last
  row moving into the hole), admit waiting requests into free rows and prefill them together.
- execute: one decode step for all live rows (a CUDA graph per batch bucket on a GPU). The chosen
  codes are copied to pinned host memory without waiting.
  The vocoder windows that this step completes (a stream reaching a chunk boundary, or its
  last allowed code) are queued right behind it, batched across streams, before the codes are
  known: the first audio does not wait for the host to read the step, nor for the steps queued
  after it. Such a window is speculative until its codes are read.
- update: read the codes of the step launched `lookahead` steps ago (by now the GPU is busy with
  the later ones, so the host never stalls it), note stops, settle the windows that waited for
  these codes (a stream that stopped drops those past its end and gets its last window now), and
  hand out the audio of every vocoder batch that is done, in launch order, followed by the end of
  the streams that stopped. While waiting for a step, the host hands out a batch as soon as it is
  done.

Because update lags execute by `lookahead` steps, a stream that stopped is stepped that many times
more on stale state before it leaves; the runner keeps such rows in bounds and nobody reads their
output (the windows queued from it are dropped). A stream's last allowed code (max_new_tokens) is
known without reading codes: once every row has chosen it, no more steps are launched.

Admission is bounded: rows (slots) plus a waiting queue of fixed length; a full engine refuses at
once (`EngineFull`). A cancelled request leaves at the next step and its row is reused.
"""

from __future__ import annotations

import collections
import ctypes
import importlib.util
import itertools
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from xtts_server.engine.runner import Runner, RunnerConfig, VocodeJob
from xtts_server.errors import EngineFull, InvalidRequest, InvalidText, XTTSError
from xtts_server.inference.sampling import SamplingParams
from xtts_server.inference.vocoder_stream import StreamingVocoder, WindowPlan
from xtts_server.model.xtts import XTTSModel

logger = logging.getLogger(__name__)

# How long the engine thread sleeps between polls of a vocoder batch and a step (seconds).
_POLL_S = 50e-6
# First audio first: while every stream waits for its first audio and has its first vocoder window
# on the GPU, no decode step runs beside them (the windows' chains of small kernels then have the
# GPU to themselves). Later chunks have the first chunk's playback as slack. A benchmark switch
# until measured (bench/engine_bench.py --variants engine.FIRST_AUDIO_ALONE=True).
FIRST_AUDIO_ALONE = False
# How: True, the next steps are queued behind those windows on the GPU (the decode stream waits
# for their batch), so they start the moment the windows end; False, the host launches no step
# until the audio is out (measured in session 15: the GPU then idles while the host hands it out).
FIRST_AUDIO_QUEUED = True


# Linux's prctl option, and the slack (ns) the engine thread's timers get (see `_precise_sleeps`).
_PR_SET_TIMERSLACK = 29
TIMER_SLACK_NS = 1000


def _precise_sleeps() -> None:
    """Let the calling thread's sleeps last about what they ask. Linux may stretch a thread's
    timers by its timer slack (50 us by default) to batch wake-ups: a 50 us poll then takes
    ~100 us or more, and audio that is done waits that much longer to be handed out."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_TIMERSLACK, TIMER_SLACK_NS, 0, 0, 0)
    except (OSError, AttributeError):  # no libc symbol: the default slack stays
        logger.debug("could not set the engine thread's timer slack")


def _request_error(e: Exception, doing: str) -> XTTSError:
    if isinstance(e, XTTSError):
        return e
    if isinstance(e, torch.OutOfMemoryError):
        return XTTSError(f"out of GPU memory while {doing}; retry, or with shorter text")
    return XTTSError(f"internal error while {doing}")


@dataclass(frozen=True)
class EngineConfig:
    slots: int = 64  # streams decoded together
    max_waiting: int = 256  # admitted requests waiting for a row; more are refused
    max_new_tokens: int = 602  # the release's limit on codes per sentence
    max_text_tokens: int = 402  # the release's gpt_max_text_tokens
    cuda_graphs: bool | None = None  # None: on CUDA devices
    buckets: bool | None = None  # pad shapes to buckets; None: when graphed (always, with graphs)
    # Decode batches up to this size run the fused Triton step; None: 16 on a GPU in half precision
    # when Triton is installed, else 0 (off).
    fused_batches: int | None = None
    # Choose codes in one Triton kernel (`engine.fused_sampler`); None: on a GPU with Triton.
    fused_sampler: bool | None = None
    # On a GPU, run vocoder windows on their own CUDA stream beside the decode steps.
    vocoder_stream: bool = True
    # Decode steps queued behind the one whose codes the host waits for. While the host reads
    # codes and queues vocoder windows (up to ~2 ms at c = 1 on an H200: BENCHMARKS.md), the GPU
    # has this many steps to run; each step more means a stream that stopped is stepped once more
    # on stale state before it leaves (its row is freed a step later).
    lookahead: int = 2


@dataclass(frozen=True)
class AudioOut:
    """What a request's callback receives: new samples, or the end (with the codes), or an error."""

    audio: np.ndarray  # float32 at 24 kHz, possibly empty
    done: bool = False
    codes: tuple[int, ...] = ()  # on done: the generated codes (the stop code excluded)
    error: BaseException | None = None


@dataclass(eq=False)
class EngineRequest:
    """One sentence to speak. `on_output` is called from the engine thread: keep it short."""

    text_ids: list[int]
    gpt_cond_latent: torch.Tensor  # [1, 32, dim]
    speaker_embedding: torch.Tensor  # [1, 512, 1]
    params: SamplingParams
    on_output: Callable[[AudioOut], None]
    seed: int = 0
    max_new_tokens: int = 602
    min_new_tokens: int = 0
    stream_chunk_size: int = 20
    speed: float = 1.0
    # --- engine-side state ---
    submitted: float = field(default_factory=time.perf_counter)
    cancelled: bool = False
    finished: bool = False
    row: int = -1
    prompt_len: int = 0
    launched: int = 0  # codes whose computation was launched
    codes: list[int] = field(default_factory=list)  # codes read back (the stop code included)
    vocoded: int = 0  # latents planned into vocoder windows (speculative ones included)
    vocoder: StreamingVocoder | None = None
    unsettled: list[_Window] = field(default_factory=list)  # its speculative windows, oldest first
    inflight: int = 0  # its windows in vocoder batches not yet handed out

    def cancel(self) -> None:
        """Stop at the next step; no more output is delivered."""
        self.cancelled = True


@dataclass(eq=False)
class _Window:
    """A vocoder window of one stream, queued on the GPU: it stands once the codes up to `count`
    were read and the stream had not stopped before `count` (or stops there and the window was
    planned as its end); otherwise it is dropped, and the stream's vocoder rolls back to `before`."""

    req: EngineRequest
    plan: WindowPlan
    count: int  # the stream's codes (and latents) it needs
    before: int  # the vocoder's finished frames before it was planned
    settled: bool  # its codes were read: it stands or is dropped
    dropped: bool = False

    @property
    def first(self) -> bool:
        """The stream's first window: its first audio waits on it (frames before it are settled
        and handed out, so a stream that has heard anything has none in flight)."""
        return self.before == 0


@dataclass
class _Launched:
    """A decode step in flight: which request each row held, and where its codes will land."""

    rows: list[EngineRequest]
    codes: torch.Tensor  # pinned host [>= len(rows)]
    event: torch.cuda.Event | None
    prefilled: list[EngineRequest]  # newcomers whose first code (from the prefill) rides along
    first_codes: torch.Tensor | None
    behind: VocodeJob | None = None  # the vocoder batch it was queued behind on the GPU


def default_fused_batches(model: XTTSModel, device: torch.device) -> int:
    """Decode batches the fused Triton step serves by default: those up to 16 on a GPU in half
    precision (where it was faster than the library kernels on an H200: BENCHMARKS.md), none in
    float32 (the parity path) or without Triton."""
    half = model.gpt.text_embedding.weight.dtype in (torch.float16, torch.bfloat16)
    return 16 if half and _triton_on_gpu(device) else 0


def _triton_on_gpu(device: torch.device) -> bool:
    return device.type == "cuda" and importlib.util.find_spec("triton") is not None


class Engine:
    def __init__(self, model: XTTSModel, device: torch.device, config: EngineConfig | None = None) -> None:
        self.model = model
        self.device = torch.device(device)
        self.config = config or EngineConfig()
        c = self.config
        graphs = c.cuda_graphs if c.cuda_graphs is not None else self.device.type == "cuda"
        a = model.gpt.args
        self.max_new = min(c.max_new_tokens, a.max_gen_audio_tokens)
        max_prompt = a.cond_latents + min(c.max_text_tokens, a.gpt_max_text_tokens) + 3
        fused = c.fused_batches if c.fused_batches is not None else default_fused_batches(model, self.device)
        sampler = c.fused_sampler if c.fused_sampler is not None else _triton_on_gpu(self.device)
        self.runner = Runner(
            model,
            RunnerConfig.default(
                c.slots,
                self.max_new,
                max_prompt,
                graphs,
                c.buckets,
                fused,
                sampler,
                c.vocoder_stream,
            ),
            self.device,
        )
        self.stop_code = a.gpt_stop_audio_token
        self.rows: list[EngineRequest] = []  # live streams; rows[i].row == i
        self.waiting: collections.deque[EngineRequest] = collections.deque()
        self._lock = threading.Lock()
        self._admitting = 0  # requests between the waiting queue and their rows
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.dead: BaseException | None = None  # set when the loop itself failed
        # Vocoder batches in flight, with their windows, oldest first.
        self._vocoding: collections.deque[tuple[VocodeJob, list[_Window]]] = collections.deque()
        self._pinned = self.device.type == "cuda"
        if c.lookahead < 1:
            raise ValueError("EngineConfig.lookahead must be at least 1")
        self._host = [self._host_buffer(c.slots) for _ in range(c.lookahead + 1)]  # one per step in flight
        self._tick = 0
        self.steps = 0  # decode steps run (metrics)
        self.rows_stepped = 0  # sum of live rows over those steps (batch occupancy)
        # Host seconds the loop spent in each phase (benchmarks read it to see where time goes):
        # schedule, admit (prompts and prefill), execute (launching a step), wait (for a step's
        # codes), collect (waiting for vocoder audio and handing it to the callbacks), window
        # (planning vocoder windows), vocode (queueing them).
        self.phase_s: dict[str, float] = collections.defaultdict(float)

    def _host_buffer(self, n: int) -> torch.Tensor:
        return torch.zeros(n, dtype=torch.long, pin_memory=self._pinned)

    # --- the public side (any thread) ------------------------------------------------------------

    @property
    def capacity(self) -> int:
        """Requests the engine holds at most (decoding + waiting)."""
        return self.config.slots + self.config.max_waiting

    @property
    def active(self) -> int:
        return len(self.rows)

    @property
    def queued(self) -> int:
        return len(self.waiting)

    def start(self) -> None:
        """Capture the graphs (on a GPU) and start the loop thread."""
        self.runner.capture()
        self._thread = threading.Thread(target=self._run, name="xtts-engine", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def submit(self, req: EngineRequest) -> EngineRequest:
        """Queue a request; raises EngineFull when the engine holds all it can."""
        if self.dead is not None:
            raise EngineFull(f"the engine has stopped after an internal error: {self.dead}")
        if not 1 <= req.max_new_tokens <= self.max_new:
            raise InvalidRequest(f"max_new_tokens must be between 1 and {self.max_new}")
        limit = self.runner.config.max_prompt - self.model.gpt.args.cond_latents - 3
        if len(req.text_ids) > limit:
            raise InvalidText(
                f"a sentence is too long for the model: {len(req.text_ids)} text tokens, the limit is {limit}"
            )
        with self._lock:
            if len(self.rows) + len(self.waiting) + self._admitting >= self.capacity:
                raise EngineFull(
                    f"the engine is full ({self.capacity} streams running or waiting); retry shortly"
                )
            self.waiting.append(req)
        self._wake.set()
        return req

    # --- the loop --------------------------------------------------------------------------------

    def _run(self) -> None:
        _precise_sleeps()
        try:
            self._loop()
        except BaseException as e:  # the loop is gone: fail everyone, report dead
            logger.exception("the engine loop failed")
            self.dead = e
            with self._lock:
                everyone = list(self.rows) + list(self.waiting)
                self.rows.clear()
                self.waiting.clear()
            for req in everyone:
                self._fail(req, e)

    def _loop(self) -> None:
        in_flight: collections.deque[_Launched] = collections.deque()  # steps launched, not yet read
        while not self._stopping:
            launched = self._iteration()
            if launched is not None:
                in_flight.append(launched)
            # Read the oldest step once `lookahead` more are queued behind it: the GPU keeps
            # decoding while the host reads codes and queues vocoder windows. With nothing
            # launched (no rows, or none with a code left to choose), read everything.
            while in_flight and (launched is None or len(in_flight) > self.config.lookahead):
                self._update(in_flight.popleft())
            if not in_flight:
                self._collect(wait=True)  # nothing decoding: hand out the vocoder's last audio now
                if not self.waiting and not self.rows:  # (rows left have finished: gone next pass)
                    self._wake.wait(0.5)
                    self._wake.clear()

    def _iteration(self) -> _Launched | None:
        t0 = time.perf_counter()
        self._schedule()
        t1 = time.perf_counter()
        prefilled, first = self._admit()
        t2 = time.perf_counter()
        self.phase_s["schedule"] += t1 - t0
        self.phase_s["admit"] += t2 - t1
        if not self.rows:
            return None
        if not prefilled and all(r.launched >= r.max_new_tokens for r in self.rows):
            # Every row has chosen all the codes it may (its last window is queued): a step would
            # only decode past their ends, beside those windows. Read the steps in flight instead.
            return None
        behind = self._first_audio_batch() if FIRST_AUDIO_ALONE and not prefilled else None
        if behind is not None and not FIRST_AUDIO_QUEUED:
            return None  # the loop reads the steps in flight, then waits for the window
        launched = self._execute(prefilled, first, behind)
        t3 = time.perf_counter()
        self.phase_s["execute"] += t3 - t2
        # The windows this step completes, right behind it: they wait for it, not for later steps.
        windows = [w for r in launched.rows if (w := self._due_window(r)) is not None]
        t4 = time.perf_counter()
        self.phase_s["window"] += t4 - t3
        if windows:
            self._vocode_launch(windows)
            self.phase_s["vocode"] += time.perf_counter() - t4
        return launched

    def _first_audio_batch(self) -> VocodeJob | None:
        """If every row waits for its first audio and its first window is queued, the last vocoder
        batch holding one of those windows: a decode step before it ends would delay no one's
        first audio, only run beside those windows."""
        last, firsts = None, set()
        for job, ws in self._vocoding:
            for w in ws:
                if w.first and not w.dropped:
                    firsts.add(id(w.req))
                    last = job
        return last if all(id(r) in firsts for r in self.rows) else None

    def _schedule(self) -> None:
        """Free the rows of finished and cancelled streams: the last rows move into the holes."""
        with self._lock:
            if any(r.cancelled for r in self.waiting):
                self.waiting = collections.deque(r for r in self.waiting if not r.cancelled)
        gone = [r.finished or r.cancelled for r in self.rows]
        if not any(gone):
            return
        for req, g in zip(self.rows, gone, strict=True):
            if g and req.cancelled:
                self._drop_unsettled(req)
                req.vocoder = None  # drop its vocoder state now (a finished one drops it at its end)
        keep = [r for r, g in zip(self.rows, gone, strict=True) if not g]
        holes = [i for i, g in enumerate(gone[: len(keep)]) if g]
        movers = [r for r, g in zip(self.rows[len(keep) :], gone[len(keep) :], strict=True) if not g]
        for hole, req in zip(holes, movers, strict=True):
            filled = min(req.prompt_len + req.launched, self.runner.config.seq_len)
            self.runner.move_row(req.row, hole, filled)
            req.row = hole
        keep.sort(key=lambda r: r.row)
        self.rows = keep

    def _admit(self) -> tuple[list[EngineRequest], torch.Tensor | None]:
        """Prefill as many waiting requests as there are free rows (up to a prefill batch)."""
        free = self.config.slots - len(self.rows)
        most = max(self.runner.config.prefill_batches)
        with self._lock:
            n = min(free, most, len(self.waiting))
            lengths = [self._prompt_len(r) for r in itertools.islice(self.waiting, n)]
            # As many as the prefill's token budget allows (in arrival order); the rest wait a step.
            while n > 1 and self.runner.config.prefill_shape(n, max(lengths[:n])) is None:
                n -= 1
            take = [self.waiting.popleft() for _ in range(n)]
            self._admitting = n  # neither waiting nor in rows until the prefill is done
        if not take:
            return [], None
        first_row = len(self.rows)
        try:
            self.runner.prefill(
                first_row,
                [r.text_ids for r in take],
                [r.gpt_cond_latent for r in take],
                [r.speaker_embedding for r in take],
                [self._row_params(r) for r in take],
            )
        except Exception as e:  # this batch fails (out of memory, a bad prompt); the engine goes on
            logger.exception("prefill of %d requests failed", len(take))
            for req in take:
                self._fail(req, _request_error(e, "starting this request"))
            with self._lock:
                self._admitting = 0
            return [], None
        decoder = self.model.hifigan_decoder
        for i, req in enumerate(take):
            req.row = first_row + i
            req.prompt_len = self._prompt_len(req)
            req.launched = 1
            # (the engine only plans its windows: the runner decodes them with the row's embedding)
            req.vocoder = StreamingVocoder(decoder, req.speaker_embedding, speed=req.speed)
        with self._lock:
            self.rows.extend(take)
            self._admitting = 0
        codes = self._host_buffer(len(take))
        codes.copy_(self.runner.codes[first_row : first_row + len(take)], non_blocking=self._pinned)
        return take, codes

    def _prompt_len(self, req: EngineRequest) -> int:
        """Positions of the request's prompt: conditioning latents, [START] text [STOP], start code."""
        return self.model.gpt.args.cond_latents + len(req.text_ids) + 3

    @staticmethod
    def _row_params(req: EngineRequest) -> tuple[float, int, float, float, bool, int, int]:
        """The request's sampling parameters as `Runner.prefill` takes them."""
        p = req.params
        return (p.temperature, p.top_k, p.top_p, p.repetition_penalty, p.do_sample, req.seed & 0xFFFFFFFF,
                req.min_new_tokens)  # fmt: skip

    def _execute(
        self, prefilled: list[EngineRequest], first: torch.Tensor | None, behind: VocodeJob | None = None
    ) -> _Launched:
        """Launch one decode step of every row (after the vocoder batch `behind` on the GPU)."""
        rows = [r for r in self.rows]
        n = len(rows)
        # Rows stepped past their end (update lags `lookahead` steps) are clamped by the runner.
        attend = min(max(r.prompt_len + r.launched for r in rows), self.runner.config.seq_len)
        if behind is not None:
            self.runner.decode_after(behind)
        code = self.runner.decode(n, attend)
        host = self._host[self._tick % len(self._host)]
        self._tick += 1
        host[:n].copy_(code[:n], non_blocking=self._pinned)
        event = None
        if self._pinned:
            event = torch.cuda.Event()
            event.record()
        for r in rows:
            r.launched += 1
        self.steps += 1
        self.rows_stepped += n
        return _Launched(rows, host, event, prefilled, first, behind)

    def _due_window(self, req: EngineRequest) -> _Window | None:
        """The window that the step just launched completes for req, if any: a chunk boundary
        or its last allowed code (planned as the end). Speculative: settled when the codes are read."""
        n = req.launched
        if req.finished or req.cancelled or req.vocoder is None or n > req.max_new_tokens:
            return None
        at_end = n == req.max_new_tokens
        if not at_end and n - req.vocoded < req.stream_chunk_size:
            return None
        window = self._plan(req, n, at_end, settled=False)
        if window is not None:
            req.unsettled.append(window)
        return window

    @staticmethod
    def _plan(req: EngineRequest, n: int, at_end: bool, settled: bool) -> _Window | None:
        """req's next window, now that it has (or, unsettled, will have) n latents."""
        assert req.vocoder is not None
        before = req.vocoder.done_frames
        req.vocoded = n
        plan = req.vocoder.plan_window(n, at_end=at_end)
        return None if plan is None else _Window(req, plan, n, before, settled)

    def _update(self, step: _Launched) -> None:
        """Read a step's codes; settle the windows that waited for them; finish streams that stopped."""
        t0 = time.perf_counter()
        self._wait(step)
        self.phase_s["wait"] += time.perf_counter() - t0
        t1 = time.perf_counter()
        windows: list[_Window] = []
        arrivals: list[tuple[EngineRequest, int]] = []
        if step.first_codes is not None:
            arrivals += [(r, int(c)) for r, c in zip(step.prefilled, step.first_codes.tolist(), strict=True)]
        arrivals += [
            (r, int(c)) for r, c in zip(step.rows, step.codes[: len(step.rows)].tolist(), strict=True)
        ]
        ending: list[EngineRequest] = []
        for req, code in arrivals:
            if req.finished or req.cancelled:
                continue
            req.codes.append(code)
            n = len(req.codes)
            if code != self.stop_code and n < req.max_new_tokens:
                while req.unsettled and req.unsettled[0].count <= n:
                    req.unsettled.pop(0).settled = True
                continue
            # Stopped at n: a window planned as the end at n stands; any other past n-1 is dropped.
            req.finished = True
            ending.append(req)
            stands = any(w.count == n and w.plan.at_end for w in req.unsettled)
            self._drop_unsettled(req, keep=n if stands else n - 1)
            if not stands and (window := self._plan(req, n, at_end=True, settled=True)) is not None:
                windows.append(window)  # its last window, now that its codes are read
        t2 = time.perf_counter()
        self.phase_s["window"] += t2 - t1
        if windows:
            self._vocode_launch(windows)
        self.phase_s["vocode"] += time.perf_counter() - t2
        for req in ending:
            if req.inflight == 0:
                self._end(req)  # (else at the hand-out of its last window)
        self._collect(wait=False)

    def _drop_unsettled(self, req: EngineRequest, keep: int = 0) -> None:
        """Settle req's speculative windows: those needing at most `keep` codes stand, the rest
        are dropped and its vocoder rolls back to before the first of them."""
        dropped = [w for w in req.unsettled if w.count > keep]
        for w in req.unsettled:
            w.settled = True
            w.dropped = w.count > keep
        if dropped and req.vocoder is not None:
            req.vocoder.done_frames = dropped[0].before
        req.unsettled.clear()

    def _settled_head(self) -> VocodeJob | None:
        """The oldest vocoder batch in flight, if every window in it is settled (else none can be
        handed out yet: batches go out in launch order)."""
        if self._vocoding and all(w.settled for w in self._vocoding[0][1]):
            return self._vocoding[0][0]
        return None

    def _wait(self, step: _Launched) -> None:
        """Wait for a step's codes, handing out vocoder audio the moment it is done meanwhile
        (polling both: a window finishing mid-step reaches its caller without waiting a step)."""
        if step.event is None:
            return
        while not step.event.query():
            head = self._settled_head()
            if head is None:
                step.event.synchronize()  # no audio can be handed out before this step
                return
            if self.runner.vocode_done(head):
                self._collect(wait=False)
            elif step.behind is not None and self._in_flight(step.behind):
                # The step runs after that batch: wait for the audio (no polling), then for it.
                self._collect(wait=False, through=step.behind)
            else:
                # Off the CPU between polls (not sleep(0), which could keep the GIL from a server
                # thread for a whole switch interval); a poll costs a few microseconds.
                time.sleep(_POLL_S)

    def _in_flight(self, job: VocodeJob) -> bool:
        """Whether the vocoder batch is launched and not yet handed out."""
        return any(queued is job for queued, _ in self._vocoding)

    def _vocode_launch(self, windows: list[_Window]) -> None:
        """Queue the windows on the GPU; their audio is handed out by `_collect`, in launch order,
        once their batch is done and every window in it is settled."""
        try:
            first = any(w.first for w in windows)
            job = self.runner.vocode_launch([(w.plan, w.req.row) for w in windows], first=first)
        except Exception as e:
            logger.exception("vocoder batch of %d windows failed", len(windows))
            for w in windows:
                self._fail(w.req, _request_error(e, "decoding audio"))
            return
        for w in windows:
            w.req.inflight += 1
        self._vocoding.append((job, windows))

    def _collect(self, wait: bool, through: VocodeJob | None = None) -> None:
        """Hand out the audio of the oldest vocoder batches whose windows are settled and, unless
        `wait`, that the GPU has finished (waiting for those up to `through`, if it is in flight);
        then end the streams whose last window it held."""
        t0 = time.perf_counter()
        pending = through is not None and self._in_flight(through)
        while (job := self._settled_head()) is not None and (wait or pending or self.runner.vocode_done(job)):
            pending = pending and job is not through
            _, windows = self._vocoding.popleft()
            try:
                audio = self.runner.vocode_collect(job)
            except Exception as e:  # these windows fail; the engine goes on
                logger.exception("vocoder batch of %d windows failed", len(windows))
                for w in windows:
                    w.req.inflight -= 1
                    if not w.dropped:
                        self._fail(w.req, _request_error(e, "decoding audio"))
                continue
            for w, chunk in zip(windows, audio, strict=True):
                req = w.req
                req.inflight -= 1
                if not w.dropped and chunk.size and req.vocoder is not None:
                    self._deliver(req, AudioOut(chunk))
                if req.finished and req.inflight == 0:
                    self._end(req)
        self.phase_s["collect"] += time.perf_counter() - t0

    def _end(self, req: EngineRequest) -> None:
        """The stream's last audio is out: deliver its end (exactly once)."""
        if req.cancelled or req.vocoder is None:
            return
        req.vocoder = None
        codes = tuple(c for c in req.codes if c != self.stop_code)
        self._deliver(req, AudioOut(np.zeros(0, dtype=np.float32), done=True, codes=codes))

    def _deliver(self, req: EngineRequest, out: AudioOut) -> None:
        if req.cancelled:
            return
        try:
            req.on_output(out)
        except Exception:  # a consumer's bug must not stop the loop
            logger.exception("an output callback failed")
            req.cancelled = True

    def _fail(self, req: EngineRequest, error: BaseException) -> None:
        self._drop_unsettled(req)
        req.finished = True
        req.vocoder = None  # (its end is this error: `_end` delivers nothing more)
        self._deliver(req, AudioOut(np.zeros(0, dtype=np.float32), done=True, error=error))
