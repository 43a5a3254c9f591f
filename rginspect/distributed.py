"""Sweeps on Dask distributed: every (checkpoint, analysis) and every training run is one task.

Tasks carry file paths and plain settings, never live models, so a worker only ever loads a
checkpoint the way `rginspect run` does. A task on a worker that dies is rerun elsewhere by the
scheduler; a task that raises is retried `retries` times, then recorded as that job's failure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .device import cuda_worker_devices, is_cuda
from .errors import RGInspectError
from .sweep import JobOutcome, SweepJob

if TYPE_CHECKING:
    from dask.distributed import SpecCluster

RETRIES = 2
# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also pins glibc's mmap
# threshold: torch then maps and unmaps every tensor and half of each task is kernel time. None
# unsets it (measured: one checkpoint's four analyses, 36 s with it, 18 s without).
UNTRIMMED_MALLOC = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}  # a local worker's environment


@contextmanager
def dask_client(
    scheduler: str, echo: Callable[[str], None] = print, device: str = "cpu"
) -> Iterator:
    """A client for `local[:N]` (a LocalCluster of N one-thread worker processes) or for a running
    cluster at `tcp://HOST:PORT`; both are closed (the local cluster shut down) on exit. On a CUDA
    `device` a local cluster gives each worker a GPU of its own (see local_gpu_cluster)."""
    import dask
    from dask.distributed import Client, LocalCluster

    kind, _, argument = scheduler.partition(":")
    cluster = None
    try:
        if kind == "local":
            workers = int(argument) if argument else None
            with dask.config.set({UNTRIMMED_MALLOC: None}):
                if is_cuda(device):
                    cluster = local_gpu_cluster(cuda_worker_devices(device, workers))
                else:
                    cluster = LocalCluster(
                        n_workers=workers or os.cpu_count() or 1,
                        threads_per_worker=1,
                        processes=True,
                        silence_logs=logging.ERROR,
                        env=ONE_THREAD,
                    )
            client = Client(cluster)
        elif kind == "tcp":
            client = Client(scheduler, timeout="20s")
        else:
            raise ValueError
    except (ValueError, OSError, TimeoutError) as error:
        if cluster is not None:
            cluster.close()
        raise RGInspectError(
            f"--scheduler {scheduler!r}: {str(error) or 'not understood'}; use local[:N] or "
            "tcp://HOST:PORT of a running `dask scheduler`"
        ) from None
    if client.dashboard_link:
        echo(f"dashboard: {client.dashboard_link}")
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def local_gpu_cluster(gpus: list[str]) -> SpecCluster:
    """A local cluster of one one-thread worker per entry of `gpus` (CUDA_VISIBLE_DEVICES values),
    each seeing only its GPU, as cuda:0; one entry per GPU gives each worker a GPU of its own.
    Workers are spawned processes, as in every Dask cluster, so none inherits a CUDA context."""
    from dask.distributed import Nanny, Scheduler, SpecCluster

    workers = {
        f"gpu{gpu}-{i}": {
            "cls": Nanny,
            "options": {"nthreads": 1, "env": {**ONE_THREAD, "CUDA_VISIBLE_DEVICES": gpu}},
        }
        for i, gpu in enumerate(gpus)
    }
    scheduler = {"cls": Scheduler, "options": {"host": "127.0.0.1", "dashboard_address": ":0"}}
    return SpecCluster(workers=workers, scheduler=scheduler, silence_logs=logging.ERROR)


def task_device(scheduler: str | None, device: str) -> str:
    """The device tasks name: on a local cluster a CUDA worker sees only its own GPU, as cuda."""
    local = scheduler is not None and scheduler.partition(":")[0] == "local"
    return "cuda" if local and is_cuda(device) else device


def dask_map(client, retries: int = RETRIES):
    """A `map_jobs` for run_sweep: submits every job at once, yields outcomes in job order."""

    def map_jobs(function: Callable[[SweepJob], JobOutcome], jobs: list[SweepJob]) -> Iterable:
        futures = client.map(function, jobs, retries=retries, pure=False)
        for job, future in zip(jobs, futures, strict=True):
            try:
                yield future.result()
            except Exception as error:  # failed for good: recorded for this job, the rest go on
                message = f"{type(error).__name__}: {error}".splitlines()[0]
                yield JobOutcome(job.checkpoint, job.name, None, error=f"task failed: {message}")

    return map_jobs


def train_many(client, jobs: list[dict[str, Any]], retries: int = RETRIES) -> list[str | None]:
    """Run training jobs as tasks; the checkpoint each wrote, or None. A job is `out` and the
    keyword arguments of `train_field_checkpoint` with TrainingSettings' fields among them."""
    futures = client.map(run_training, jobs, retries=retries, pure=False)
    written = []
    for future in futures:
        try:
            written.append(future.result())
        except Exception:
            written.append(None)
    return written


def run_training(job: dict[str, Any], threads: int | None = 1) -> str:
    """One field model trained and written by the Python training API (one thread per task on
    a cluster); returns the path it wrote."""
    import torch

    from .train import train_field_checkpoint
    from .training_settings import FIELD_TRAINING, TrainingSettings

    if threads is not None:
        torch.set_num_threads(threads)
    shared = {
        key: value for key, value in job.items() if key in TrainingSettings.__dataclass_fields__
    }
    own = {key: value for key, value in job.items() if key not in shared and key != "out"}
    settings = replace(FIELD_TRAINING, **shared, progress=False)
    train_field_checkpoint(Path(job["out"]), settings, **own)
    return job["out"]
