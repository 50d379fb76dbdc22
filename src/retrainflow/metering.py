"""Measure what a block of work costs: CPU seconds, wall seconds, peak memory.

Used by the train stage (its numbers become lineage tags) and by benchmarks.
Peak memory is the process's resident set size, sampled by a background thread
every ``interval`` seconds while the block runs (``ru_maxrss`` alone cannot be
reset, so it would report the peak of an earlier, bigger step).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Cost:
    """Filled in when the ``measure()`` block exits."""

    cpu_seconds: float = 0.0
    wall_seconds: float = 0.0
    peak_rss_mb: float = 0.0
    start_rss_mb: float = 0.0
    samples: int = field(default=0, repr=False)


def rss_mb() -> float:
    """Current resident set size of this process in MiB."""
    import psutil

    return psutil.Process(os.getpid()).memory_info().rss / 2**20


@contextmanager
def measure(interval: float = 0.05) -> Iterator[Cost]:
    """Context manager that records the cost of its block into the yielded :class:`Cost`."""
    cost = Cost(start_rss_mb=rss_mb())
    peak = [cost.start_rss_mb]
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], rss_mb())
            cost.samples += 1

    thread = threading.Thread(target=sample, name="rss-sampler", daemon=True)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    thread.start()
    try:
        yield cost
    finally:
        stop.set()
        thread.join()
        cost.cpu_seconds = time.process_time() - cpu0
        cost.wall_seconds = time.perf_counter() - wall0
        cost.peak_rss_mb = max(peak[0], rss_mb())
