"""What of the machine this process may use."""

from __future__ import annotations

import os


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which a batch scheduler may narrow)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def follow_parent(parent: int, niceness: int = 0, threads: int | None = None) -> None:
    """Initialiser of a worker process: lower its priority, set its torch threads, and end it
    when `parent` is gone. A pool's worker waits for work forever, so one whose parent was
    killed (kill -9) would outlive it and keep its terminal's pipes open."""
    import threading
    import time

    if niceness:
        os.nice(niceness)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="follow-parent").start()
