"""The device rginspect computes on, and what changes when it is a GPU.

The rules (docs/gpu.md):
- random numbers come from CPU generators and are moved to the device, so one seed gives the same
  draws on every device and the results differ by float rounding alone;
- fp32 arithmetic runs in full precision while rginspect computes (no TF32 in cuBLAS or cuDNN):
  its log-dets, Jacobians and invertibility checks are claimed to 1e-5, which TF32 cannot give;
- a timing that sizes batches or cuts steps waits for the device first;
- processes that use CUDA are spawned, never forked after CUDA has started;
- memory limits are those of the device the tensors live on.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import torch

from .errors import RGInspectError

DEVICE_TYPES = ("cpu", "cuda")


class DeviceError(RGInspectError):
    """--device names no device this machine has."""


def resolve_device(name: str | torch.device) -> torch.device:
    """The torch device for `--device NAME` (cpu, cuda, cuda:N), checked against this machine."""
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise DeviceError(f"--device {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type not in DEVICE_TYPES:
        raise DeviceError(f"--device {name!r}: rginspect runs on cpu or cuda[:N]")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError("CUDA is not available on this machine; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DeviceError(
                f"--device {name}: this machine has {count} CUDA device(s), cuda:0 to "
                f"cuda:{count - 1}"
            )
    return device


def is_cuda(device: str | torch.device) -> bool:
    return torch.device(device).type == "cuda"


def synchronize(device: str | torch.device) -> None:
    """Wait until the device has finished the work queued on it (CUDA runs asynchronously), so
    that a clock read afterwards measures the work and not only its launch."""
    if is_cuda(device):
        torch.cuda.synchronize(device)


@contextmanager
def tf32(allowed: bool) -> Iterator[None]:
    """TF32 in CUDA's fp32 matrix products and cuDNN convolutions allowed or not, restored on
    exit. TF32 rounds operands to 10 mantissa bits (~1e-3); cuDNN uses it by default."""
    matmul, cudnn = torch.backends.cuda.matmul, torch.backends.cudnn
    if hasattr(matmul, "fp32_precision"):  # torch >= 2.9; mixing it with allow_tf32 is an error
        mode = "tf32" if allowed else "ieee"
        flags = [(matmul, "fp32_precision", mode), (cudnn.conv, "fp32_precision", mode)]
    else:
        flags = [(matmul, "allow_tf32", allowed), (cudnn, "allow_tf32", allowed)]
    before = [getattr(owner, name) for owner, name, _ in flags]
    for owner, name, value in flags:
        setattr(owner, name, value)
    try:
        yield
    finally:
        for (owner, name, _), value in zip(flags, before, strict=True):
            setattr(owner, name, value)


def full_precision() -> AbstractContextManager[None]:
    """fp32 in full on CUDA (no TF32), what rginspect computes in; usable as a decorator."""
    return tf32(False)


def worker_start_method(device: str | torch.device) -> str:
    """How to start worker processes for a run on `device`: fork (cheap, shares the imports)
    unless the workers use CUDA, which cannot run in a child forked from a parent that has
    touched it ("Cannot re-initialize CUDA in forked subprocess"): then spawn."""
    if not is_cuda(device) and "fork" in multiprocessing.get_all_start_methods():
        return "fork"
    return "spawn"


def available_memory(device: str | torch.device = "cpu") -> int:
    """Bytes the device can still give: free GPU memory for CUDA (what the driver reports, less
    what other processes hold), else this machine's MemAvailable (a large number where unknown)."""
    if is_cuda(device):
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def describe(device: str | torch.device) -> str:
    """The device for provenance: 'cpu', or 'cuda:0 (NVIDIA H100 80GB HBM3, CUDA 13.0)'."""
    device = torch.device(device)
    if device.type != "cuda":
        return str(device)
    index = device.index if device.index is not None else torch.cuda.current_device()
    name = torch.cuda.get_device_name(index)
    return f"cuda:{index} ({name}, CUDA {torch.version.cuda})"


def out_of_memory_advice(device: str | torch.device, analysis: str) -> str:
    """What to do when an analysis ran out of (GPU) memory, in one line."""
    device = torch.device(device)
    free = available_memory(device) / 2**30
    where = "GPU memory" if device.type == "cuda" else "memory"
    advice = f"lower --samples or {analysis}'s sizes (`rginspect plugins` lists them)"
    if device.type == "cuda":
        advice += ", or run it with --device cpu"
    return f"ran out of {where} on {device} ({free:.1f} GiB free now): {advice}"


def cuda_worker_devices(device: str | torch.device, n_workers: int | None) -> list[str]:
    """CUDA_VISIBLE_DEVICES for each worker of a local cluster on a CUDA `device`: one worker per
    visible GPU by default, more taking the GPUs in turn; with cuda:N, every worker on GPU N.
    Each worker then sees its GPU as cuda:0."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = [g.strip() for g in visible.split(",")] if visible else None
    if gpus is None:
        gpus = [str(i) for i in range(torch.cuda.device_count())]
    index = torch.device(device).index
    if index is not None:
        gpus = gpus[index : index + 1]
    if not gpus:
        raise DeviceError(f"--device {device}: no CUDA device is visible to this process")
    return [gpus[i % len(gpus)] for i in range(n_workers or len(gpus))]
