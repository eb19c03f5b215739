"""The MNIST training tool under torchrun (gloo on the CPU): 2 and 3 processes train the model of one
process on the same global batches, with weight decay and the KL sparsity penalty on and a batch size
that neither 2 nor 3 divides; --resume continues an interrupted run bit for bit; only rank 0 writes
checkpoints; a refused run exits with its status and one line; no process leaves a gloo thread
behind. Data: the tiny MNIST of conftest.py (150 training images after a validation split of 50, in
batches of 29: five full batches and one of 5, so shares of 14 + 15 and 2 + 3 for two processes,
9 + 10 + 10 and 1 + 2 + 2 for three); 9 epochs of 6 steps each."""
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import List

import pytest
import torch

from matnet_torch.apps.common.checkpoint import load_checkpoint
from matnet_torch.apps.common.distributed import Processes
from matnet_torch.apps.mnist import train

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
EPOCHS, STEPS_PER_EPOCH, STOP_AFTER_EPOCH = 9, 6, 4
INTERRUPTED = 130  # common.cli's exit status after Ctrl-C
# The runs differ only in the order of float32 sums: each sum of a share's B/W terms and the sum over
# the processes, against one sum of B terms. Per step that moves a gradient by at most about
# B·u·|g| = 29 · 6e-8 · |g| ≈ 2e-6 (|g| ≲ 1), the update by lr / (1 − momentum) ≤ 1 times that, so
# over the 54 steps of a run whose loss decreases throughout (β = 0.01; with β = 0.1 the loss of this
# tiny data set grows and rounding is amplified) the parameters agree within 54 · 2e-6 ≈ 1e-4.
# Weighting the samples per share instead of per global batch (each share's mean cross-entropy and
# its own mean activations, as the tool did before) moves them by 0.1 in this very run.
TOLERANCE = 1e-4


def options(data_dir, out, *extra):
    return ["--data-dir", str(data_dir), "--out", str(out), "--threads", "1", "--validation-size", "50",
            "--batch-size", "29", "--epochs", str(EPOCHS), "--seed", "3", "--weight-decay", "1e-3",
            "--sparsity-weight", "0.01", *extra]


def torchrun(processes: int, record_dir: Path, *arguments) -> str:
    """Runs distributed_worker.py on ``processes`` processes of this machine (a free port: --standalone)
    and returns its stderr. Each worker records the command's exit status and exits with 0 itself, so
    torchrun's exit status is 0 unless a process crashed (an abort or a signal, also at interpreter
    shutdown, or no record): asserted here. The output is printed, so that pytest shows it beside a
    failed assertion, with the Python stacks of a process that crashed (faulthandler)."""
    record_dir.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
               str(WORKER), str(record_dir), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    print(f"$ {' '.join(command)}\n{result.stdout[-4000:]}\n{result.stderr[-6000:]}")
    assert result.returncode == 0, f"a process crashed: torchrun exited with status {result.returncode}"
    return result.stderr


def records(record_dir: Path, processes: int) -> List[dict]:
    """What each rank's worker wrote (distributed_worker.py): the command's exit status, share sizes,
    checkpoints, gloo threads left after the command."""
    return [json.loads((record_dir / f"rank{rank}.json").read_text()) for rank in range(processes)]


def statuses(run: List[dict]) -> List[int]:
    return [record["status"] for record in run]


def model_of(out):
    return load_checkpoint(str(out / "checkpoint.pt"), "mnist")["model"]


@pytest.fixture(scope="module")
def single_process(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    assert train.main(options(data_dir, out)) == 0
    return model_of(out)


@pytest.fixture(scope="module")
def two_processes(data_dir, tmp_path_factory):
    """(model after EPOCHS epochs, records of both ranks) of an uninterrupted two-process run."""
    out, record_dir = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("two_records")
    torchrun(2, record_dir, *options(data_dir, out))
    assert statuses(records(record_dir, 2)) == [0, 0]
    return model_of(out), records(record_dir, 2)


@pytest.fixture(scope="module")
def three_processes(data_dir, tmp_path_factory):
    """(model, records) of an uninterrupted three-process run."""
    out, record_dir = tmp_path_factory.mktemp("three"), tmp_path_factory.mktemp("three_records")
    torchrun(3, record_dir, *options(data_dir, out))
    assert statuses(records(record_dir, 3)) == [0, 0, 0]
    return model_of(out), records(record_dir, 3)


@pytest.fixture(scope="module")
def three_processes_resumed(data_dir, tmp_path_factory):
    """(model, records of the interrupted part, records of the resumed part) of a three-process run
    stopped as by Ctrl-C after epoch STOP_AFTER_EPOCH and continued with --resume."""
    out, first, rest = (tmp_path_factory.mktemp(name) for name in ("resumed", "first_records", "rest_records"))
    torchrun(3, first, "--stop-after-epoch", str(STOP_AFTER_EPOCH), *options(data_dir, out))
    assert statuses(records(first, 3)) == [INTERRUPTED] * 3
    assert load_checkpoint(str(out / "checkpoint.pt"), "mnist")["epoch"] == STOP_AFTER_EPOCH
    torchrun(3, rest, *options(data_dir, out, "--resume"))
    assert statuses(records(rest, 3)) == [0, 0, 0]
    return model_of(out), records(first, 3), records(rest, 3)


def test_each_process_trains_on_its_share_of_every_batch(two_processes, three_processes):
    shares = {2: [[14] * 5 + [2], [15] * 5 + [3]], 3: [[9] * 5 + [1], [10] * 5 + [2], [10] * 5 + [2]]}
    for processes, (_, run) in ((2, two_processes), (3, three_processes)):
        for rank, record in enumerate(run):
            assert record["status"] == 0 and record["share_sizes"] == shares[processes][rank] * EPOCHS


def test_only_rank_0_writes_checkpoints(three_processes):
    _, run = three_processes
    assert [record["checkpoints"] for record in run] == [list(range(1, EPOCHS + 1)), [], []]


def test_every_process_ends_gloo_s_threads_before_it_exits(two_processes, three_processes_resumed):
    """Processes.leave destroys the process group, whose destructor joins gloo's worker threads: none
    may be left when the interpreter shuts down (after training, and after an interruption)."""
    _, two = two_processes
    _, interrupted, resumed = three_processes_resumed
    for record in [*two, *interrupted, *resumed]:
        assert record["gloo_threads_after_leave"] == []


@pytest.mark.parametrize("processes", [2, 3])
def test_several_processes_train_the_model_of_one_process(processes, single_process, two_processes, three_processes):
    model, _ = {2: two_processes, 3: three_processes}[processes]
    differences = {name: (model[name] - parameter).abs().max().item() for name, parameter in single_process.items()}
    assert max(differences.values()) <= TOLERANCE, differences


def test_resume_under_torchrun_continues_bit_for_bit(three_processes, three_processes_resumed):
    uninterrupted, _ = three_processes
    resumed, interrupted, rest = three_processes_resumed
    assert [record["checkpoints"] for record in interrupted] == [list(range(1, STOP_AFTER_EPOCH + 1)), [], []]
    for record in rest:  # the resumed processes trained the remaining epochs only
        assert len(record["share_sizes"]) == (EPOCHS - STOP_AFTER_EPOCH) * STEPS_PER_EPOCH
    for name, parameter in resumed.items():
        assert torch.equal(parameter, uninterrupted[name]), name


def test_a_batch_too_small_for_the_processes_is_refused_in_one_line(data_dir, tmp_path):
    """--batch-size 149 leaves a last batch of 1 image for 2 processes: exit status 2 on every rank,
    each with one line on stderr naming the option."""
    record_dir = tmp_path / "records"
    stderr = torchrun(2, record_dir, *options(data_dir, tmp_path / "out", "--batch-size", "149"))
    for record in records(record_dir, 2):
        assert record["status"] == 2 and record["gloo_threads_after_leave"] == []
    messages = [line for line in stderr.splitlines() if line.startswith("matnet_torch.train")]
    expected = ("matnet_torch.train: --batch-size 149 with 150 training samples leaves a batch of 1 samples, "
                "fewer than the 2 processes; choose another --batch-size")
    assert messages == [expected, expected]


def test_the_shares_of_a_global_batch_cover_it_once():
    for size in range(1, 40):
        for world_size in range(1, 6):
            shares = [Processes(rank, world_size).global_batch(size).share for rank in range(world_size)]
            parts = [range(size)[share] for share in shares]
            assert [index for part in parts for index in part] == list(range(size))
            assert max(map(len, parts)) - min(map(len, parts)) <= 1  # unequal by one sample at most
