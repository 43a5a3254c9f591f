"""Run every benchmark in this folder, one after another: python tests/benchmarks/run.py"""

import runpy
import sys
from pathlib import Path

if __name__ == "__main__":
    chosen = sys.argv[1:]
    for script in sorted(Path(__file__).parent.glob("bench_*.py")):
        if not chosen or script.stem.removeprefix("bench_") in chosen:
            print(f"=== {script.name}", flush=True)
            sys.argv = [str(script)]  # each benchmark with its own defaults
            runpy.run_path(str(script), run_name="__main__")
