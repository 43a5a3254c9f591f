"""The allocator settings every run applies: large tensors freed and allocated again stop costing
a page fault per page (measured in a fresh process, against the same process without them)."""

import subprocess
import sys

import pytest

from rginspect.allocator import keep_freed_memory

CHURN = """
import resource, sys, torch
from rginspect.allocator import keep_freed_memory
torch.set_num_threads(1)
if sys.argv[1] == "keep":
    assert keep_freed_memory()
x = torch.ones(64, 256, 32, 32)  # 64 MiB, above glibc's largest default mmap threshold
def churn():
    for _ in range(10):
        y = x * 2.0
        del y
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_faults(mode: str) -> int:
    command = [sys.executable, "-c", CHURN, mode]
    return int(subprocess.run(command, capture_output=True, text=True, check=True).stdout)


@pytest.mark.skipif(not keep_freed_memory(), reason="needs glibc's mallopt (Linux with glibc)")
def test_kept_memory_stops_the_page_faults_of_repeated_large_tensors():
    pages = 64 * 2**20 // 4096
    assert minor_faults("default") > 5 * pages  # each of the 10 products faults its pages in
    assert minor_faults("keep") < pages  # the products reuse one block of the heap
