"""The MNIST training tool under torchrun with DistributedDataParallel (gloo on the CPU): two processes
on this machine train the same model as one process on the same global batches, each on its own
half of every batch; only rank 0 writes checkpoints; --resume continues an interrupted two-process run
bit for bit. Data: the tiny MNIST of conftest.py (150 training images after a validation split of 50,
batches of 32: four full batches and one of 22, each split 16 + 16 or 11 + 11)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from matnet_torch.apps.common.checkpoint import load_checkpoint
from matnet_torch.apps.mnist import train

WORKER = Path(__file__).resolve().parent / "distributed_worker.py"
EPOCHS = 2


def options(data_dir, out):
    return ["--data-dir", str(data_dir), "--out", str(out), "--threads", "1", "--validation-size", "50",
            "--batch-size", "32", "--epochs", str(EPOCHS), "--seed", "3"]


def torchrun(record_dir, *arguments):
    """Two processes of distributed_worker.py on this machine (a free port: --standalone); the exit status.
    The output of a run that fails is printed, so that pytest shows why beside the failed assertion,
    with the Python stacks of a process that crashes (faulthandler)."""
    record_dir.mkdir(exist_ok=True)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(WORKER),
               str(record_dir), *arguments]
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "PYTHONFAULTHANDLER": "1"})
    if result.returncode != 0:
        print(f"$ {' '.join(command)}\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return result.returncode


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
    out, records = tmp_path_factory.mktemp("two"), tmp_path_factory.mktemp("two_records")
    assert torchrun(records, *options(data_dir, out)) == 0
    return model_of(out), [json.loads((records / f"rank{rank}.json").read_text()) for rank in (0, 1)]


def test_each_process_trains_on_its_half_of_every_batch(two_processes):
    _, records = two_processes
    for record in records:
        assert record["batch_sizes"] == [16, 16, 16, 16, 11] * EPOCHS


def test_only_rank_0_writes_checkpoints(two_processes):
    _, records = two_processes
    assert records[0]["checkpoints"] == list(range(1, EPOCHS + 1)) and records[1]["checkpoints"] == []


def test_two_processes_train_the_model_of_one_process(two_processes, single_process):
    # The runs differ only in the order of float32 sums (two half-batch means averaged by the
    # all-reduce, against one batch mean): per step the gradient moves by about B·u·|g| ≈ 2e-6
    # (B = 32, u = 6e-8, |g| ≲ 1), the update by lr / (1 − momentum) = 1 times that, so after
    # 10 steps the parameters agree within 2e-5. Training each process on its half alone, without
    # the averaging, moves them by about lr·|g| ≈ 1e-2.
    model, _ = two_processes
    for name, parameter in single_process.items():
        torch.testing.assert_close(model[name], parameter, rtol=0, atol=2e-5, msg=name)


def test_resume_under_torchrun_continues_bit_for_bit(data_dir, tmp_path, two_processes):
    out = tmp_path / "resumed"
    assert torchrun(tmp_path / "first", "--stop-after-epoch", "1", *options(data_dir, out)) != 0
    assert load_checkpoint(str(out / "checkpoint.pt"), "mnist")["epoch"] == 1
    assert torchrun(tmp_path / "rest", *options(data_dir, out), "--resume") == 0
    for rank in (0, 1):  # the resumed processes trained the second epoch only
        record = json.loads((tmp_path / "rest" / f"rank{rank}.json").read_text())
        assert record["batch_sizes"] == [16, 16, 16, 16, 11]
        assert record["checkpoints"] == ([2] if rank == 0 else [])
    uninterrupted, _ = two_processes
    for name, parameter in model_of(out).items():
        assert torch.equal(parameter, uninterrupted[name]), name
