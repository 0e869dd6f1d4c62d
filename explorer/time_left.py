"""Elapsed time and an honest estimate of the time left for a batch of relaxations (the progress bar's text)."""
from __future__ import annotations

import time


class BatchClock:
    """Elapsed time of a batch relaxation and an estimate of the time left, for the progress bar."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.sample_started = {0: 0.0}   # sample index -> seconds since the start when it began

    def estimate(self, i: int, total: int, step: int, cap: int) -> str:
        elapsed = time.perf_counter() - self.started
        self.sample_started.setdefault(i, elapsed)
        return remaining_text(elapsed, self.sample_started[i], i, total, step, cap)


def remaining_text(elapsed: float, sample_started: float, i: int, total: int, step: int, cap: int) -> str:
    """"N s so far, about M s left" for sample i (from 0) of ``total`` at optimizer step ``step``.

    The mean time of the finished samples times those left, less the time already spent on this
    one. During the first sample there is no honest estimate (most samples stop well before the
    step cap, so steps times the cap would say many minutes), and the text says when there will be.
    """
    so_far = f"{_duration(elapsed)} so far"
    if i == 0:
        return f"{so_far}; the time left is estimated once the first sample is done" if total > 1 else so_far
    left = sample_started / i * (total - i) - (elapsed - sample_started)
    return f"{so_far}, about {_duration(max(left, 1.0))} left"


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds} s" if seconds < 90 else f"{seconds // 60} min {seconds % 60:02d} s"
