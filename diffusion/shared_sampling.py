"""One model, many callers: requests that arrive together share their network calls.

Thirty students pressing Generate at once each ask for one small crystal. Run one after another
(or side by side on two cores) every request pays the network's fixed cost per step alone; merged
into one batch the network evaluates all of them in one call per step, which costs little more
than one of them (docs/performance.md#a-classroom-at-once has the measurements).

``SharedSampler.sample`` has the signature of ``sampling.sample`` and blocks its caller until its own
trajectory is ready. Whichever caller finds no batch running leads: it waits ``gather_seconds`` for
others, merges the waiting requests that can share a run (same model, same ``SamplingConfig``, the
same kind of start and conditions), runs ``sampling.sample`` once and hands each caller its rows.
Requests that arrive meanwhile wait for the next batch. Each crystal draws its noise from its own
seeded stream (``CrystalNoise``), so a caller gets the crystals it would get alone, up to float32
rounding: matrix-product kernels sum in a different order for different batch sizes (differences
of order 1e-6 in fractional coordinates; tests/test_shared_sampling.py checks them).

Isolation: a request is validated in its caller's thread before it joins a batch, so a bad one
raises only there; if a merged run fails anyway, each of its requests is rerun alone and gets its
own result or its own error; if the leader's own caller is stopped mid-run (a session closed or rerun),
the other requests go back to the queue for the next leader. Progress is reported to each caller in the caller's own thread (a
Streamlit progress bar must be updated from its session's thread).
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, replace
from typing import Callable

from .crystal_diffusion import CrystalDiffusion
from .sampling import ProgressCallback, SampleRequest, SamplingConfig, sample
from .samplers.config import PER_CRYSTAL_FIELDS, validate_request
from .trajectory import Trajectory

DEFAULT_GATHER_SECONDS = 0.05
DEFAULT_MAX_ATOMS = 2048          # atoms per merged batch (a classroom of 20-atom cells fits many times)
POLL_SECONDS = 0.1                # how often a waiting caller looks at its progress

Runner = Callable[[CrystalDiffusion, SampleRequest, SamplingConfig, "ProgressCallback | None"], Trajectory]


def merge_key(model: CrystalDiffusion, request: SampleRequest, config: SamplingConfig) -> tuple:
    """Requests with equal keys can run as one batch: the same model and config, the same start step, and the
    same conditions present (a property, a space group, symmetry constraints)."""
    return (id(model), config, request.start is None, request.start_step, request.symmetry is None,
            request.prop is None, request.space_group is None, request.atomic_numbers is None)


def merge_requests(requests: list[SampleRequest]) -> SampleRequest:
    """One request holding every crystal of ``requests`` (all with one ``merge_key``), in order."""
    merged = {}
    for name in PER_CRYSTAL_FIELDS:
        values = [getattr(r, name) for r in requests]
        merged[name] = None if values[0] is None else tuple(v for value in values for v in value)
    return replace(requests[0], **merged)


def split_rows(requests: list[SampleRequest]) -> list[list[int]]:
    """The merged request's crystal rows that belong to each request."""
    rows, start = [], 0
    for request in requests:
        count = len(request.num_atoms)
        rows.append(list(range(start, start + count)))
        start += count
    return rows


@dataclass(eq=False)   # a ticket is one caller: two equal requests (same formula and seed) are two tickets
class _Ticket:
    """One caller's request, waiting in the queue or running in a batch."""

    model: CrystalDiffusion
    request: SampleRequest
    config: SamplingConfig
    key: tuple
    done_steps: int = 0
    total_steps: int = 0
    result: Trajectory | None = None
    error: BaseException | None = None
    finished: bool = False

    @property
    def atoms(self) -> int:
        return sum(self.request.num_atoms)


@dataclass
class SharedSamplerStats:
    """What the sampler has done so far (for benchmarks and tests)."""

    requests: int = 0
    runs: int = 0                 # sampling.sample calls (merged batches, reruns included)
    largest_batch: int = 0        # requests in the largest merged run
    reruns: int = 0               # requests rerun alone after their merged run failed


@dataclass
class SharedSampler:
    """Merges concurrent ``sample`` calls into shared batches (see the module docstring).

    gather_seconds: how long a leader waits for more requests before it starts a batch (the first request
        of a quiet period pays it once); max_atoms: atoms per merged batch; run: the sampling function
        (``sampling.sample``; tests may wrap it).
    """

    gather_seconds: float = DEFAULT_GATHER_SECONDS
    max_atoms: int = DEFAULT_MAX_ATOMS
    run: Runner = sample
    stats: SharedSamplerStats = field(default_factory=SharedSamplerStats)

    def __post_init__(self) -> None:
        if self.gather_seconds < 0 or self.max_atoms < 1:
            raise ValueError("gather_seconds must be >= 0 and max_atoms >= 1")
        self._lock = threading.Condition()
        self._waiting: list[_Ticket] = []
        self._leading = False

    def sample(self, model: CrystalDiffusion, request: SampleRequest, config: SamplingConfig = SamplingConfig(),
               progress: ProgressCallback | None = None) -> Trajectory:
        """``sampling.sample(model, request, config, progress)``, sharing network calls with concurrent callers."""
        config.validate(model.num_steps)
        validate_request(model, request)   # a bad request fails here, in its own thread, before it joins others
        ticket = _Ticket(model, request, config, merge_key(model, request, config))
        reported = 0
        with self._lock:
            self._waiting.append(ticket)
            self.stats.requests += 1
        while True:
            with self._lock:
                if ticket.finished:
                    break
                if not self._leading:
                    self._leading = True
                    break
                self._lock.wait(POLL_SECONDS)
                done, total = ticket.done_steps, ticket.total_steps
            if progress is not None and total and done != reported:   # outside the lock: a UI call may be slow
                reported = done
                progress(done, total)
        if not ticket.finished:
            self._lead(ticket, progress)
        if progress is not None and ticket.total_steps and reported != ticket.total_steps and ticket.error is None:
            progress(ticket.total_steps, ticket.total_steps)
        if ticket.error is not None:
            raise ticket.error
        return ticket.result

    def _lead(self, own: _Ticket, progress: ProgressCallback | None) -> None:
        """Run one batch that holds this caller's own ticket, then hand the lead on."""
        try:
            if self.gather_seconds:
                time.sleep(self.gather_seconds)   # let the rest of a classroom's clicks arrive
            with self._lock:
                batch = self._take_batch(own)
            self._run_batch(batch, own, progress)
        finally:
            with self._lock:
                self._leading = False
                self._lock.notify_all()

    def _take_batch(self, own: _Ticket) -> list[_Ticket]:
        """The waiting tickets that share ``own``'s key (``own`` first), up to ``max_atoms``; removed from the queue."""
        batch, atoms = [own], own.atoms
        for ticket in self._waiting:
            if ticket is not own and ticket.key == own.key and atoms + ticket.atoms <= self.max_atoms:
                batch.append(ticket)
                atoms += ticket.atoms
        self._waiting = [t for t in self._waiting if t not in batch]
        return batch

    def _run_batch(self, batch: list[_Ticket], own: _Ticket, progress: ProgressCallback | None) -> None:
        def report(done: int, total: int) -> None:
            for ticket in batch:
                ticket.done_steps, ticket.total_steps = done, total
            if progress is not None:
                progress(done, total)
            with self._lock:
                self._lock.notify_all()

        requests = [t.request for t in batch]
        try:
            trajectory = self.run(own.model, merge_requests(requests), own.config, report)
            parts = [trajectory.select(rows, r.seeds[0]) for rows, r in zip(split_rows(requests), requests)]
        except Exception:
            if len(batch) == 1:
                raise
            parts = None
        except BaseException:
            # the leader's own caller is being stopped (Streamlit stops a session's script by raising from a
            # UI call, e.g. its progress bar): hand the others back to the queue, where the next leader takes them
            with self._lock:
                self._waiting = [t for t in batch if t is not own] + self._waiting
                self._lock.notify_all()
            raise
        with self._lock:
            self.stats.runs += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
        if parts is None:
            # one request (or the mix) broke the merged run: each one alone, with its own result or error
            for ticket in batch:
                try:
                    result, error = self.run(ticket.model, ticket.request, ticket.config, report), None
                except Exception as exc:
                    result, error = None, exc
                self._finish(ticket, result, error, rerun=True)
            return
        for ticket, part in zip(batch, parts):
            self._finish(ticket, part, None)

    def _finish(self, ticket: _Ticket, result: Trajectory | None, error: BaseException | None,
                rerun: bool = False) -> None:
        with self._lock:
            ticket.result, ticket.error, ticket.finished = result, error, True
            if rerun:
                self.stats.reruns += 1
                self.stats.runs += 1
            self._lock.notify_all()
