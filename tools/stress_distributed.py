"""Runs the two-process training of tests/test_distributed.py many times and counts the failures.

    python tools/stress_distributed.py                 # 500 runs of 2 processes
    python tools/stress_distributed.py --runs 50 --processes 3

Each run is ``torchrun --standalone`` of tests/distributed_worker.py: one epoch of the MNIST tool on
the tests' tiny MNIST with weight decay and the sparsity penalty on (so collectives run in forward,
backward and after it), a batch size that 2 and 3 do not divide. A run fails if any process exits
with a status other than 0 (an abort at interpreter shutdown is 134 or signal 6), hangs past
--timeout, writes no record, or leaves a gloo thread running after the command. Prints one line per
failure, then the count. Not a test (it takes minutes to hours): a check that exits are clean.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from conftest import write_tiny_mnist  # noqa: E402  (the tests' tiny MNIST)

WORKER = ROOT / "tests" / "distributed_worker.py"


def one_run(data_dir: Path, work: Path, processes: int, timeout: float) -> str:
    """'' if the run was clean, else why not."""
    records = work / "records"
    records.mkdir(parents=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(WORKER), str(records), "--data-dir", str(data_dir), "--out", str(work / "out"), "--threads", "1",
               "--validation-size", "50", "--batch-size", "29", "--epochs", "1", "--seed", "3",
               "--weight-decay", "1e-3", "--sparsity-weight", "0.01"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"hung for more than {timeout:.0f} s"
    if result.returncode != 0:
        tail = " | ".join(line for line in result.stderr.splitlines()[-40:] if "exitcode" in line or "Signal" in line or "terminate" in line)
        return f"torchrun exit status {result.returncode}: {tail}"
    for rank in range(processes):
        path = records / f"rank{rank}.json"
        if not path.exists():
            return f"rank {rank} wrote no record"
        record = json.loads(path.read_text())
        if record["status"] != 0 or record["gloo_threads_after_leave"]:
            return f"rank {rank}: status {record['status']}, gloo threads left {record['gloo_threads_after_leave']}"
    return ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=500, help="number of runs (default: 500)")
    parser.add_argument("--processes", type=int, default=2, help="processes per run (default: 2)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds before a run counts as hung (default: 300)")
    args = parser.parse_args()
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    failures, started = 0, time.monotonic()
    with tempfile.TemporaryDirectory() as scratch:
        (Path(scratch) / "mnist").mkdir()
        data_dir = write_tiny_mnist(Path(scratch) / "mnist")
        for run in range(1, args.runs + 1):
            reason = one_run(data_dir, Path(scratch) / f"run{run}", args.processes, args.timeout)
            if reason:
                failures += 1
                print(f"run {run}: {reason}", flush=True)
            if run % 10 == 0 or run == args.runs:
                print(f"{run} runs, {failures} failures, {time.monotonic() - started:.0f} s", flush=True)
    print(f"failures: {failures} of {args.runs} runs of {args.processes} processes")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
