"""``python -m matnet_torch.superres train`` under torchrun (gloo on the CPU): the model of one process,
whatever the number of processes, with weight decay and the KL sparsity penalty on and a batch size
that neither 2 nor 3 divides, also when a run interrupted on 2 processes is resumed on 3; only rank 0
writes checkpoints; a refused run exits with its status and one line on every rank; no process
leaves a gloo thread behind. Data: the two small images of test_superres_tool.py, 301 patches
(151 + 150) in batches of 29: ten full batches and one of 11, so shares of 14 + 15 and 5 + 6 for two
processes, 9 + 10 + 10 and 3 + 4 + 4 for three; 6 epochs of 11 steps, interrupted after epoch 2."""
import pytest

from matnet_torch.apps.common.checkpoint import load_checkpoint
from matnet_torch.apps.superres import cli
from test_distributed import INTERRUPTED, records, statuses, torchrun
from test_superres_tool import folders  # noqa: F401 (the fixture of the training images)

EPOCHS, STEPS_PER_EPOCH, STOP_AFTER_EPOCH = 6, 11, 2
# The runs differ only in the order of float32 sums: each share's sum of B/W samples' terms and the
# sum over the processes, against one sum of B terms, so a gradient differs by about B·u·|g| =
# 29 · 6e-8 · |g| ≈ 2e-6 |g| per step. Adam's step is lr · m̂ / (√v̂ + ε): relative changes of the
# gradients of 2e-6 move it by about 2e-6 · lr = 2e-8 (lr = 0.01), so 66 steps move a parameter by
# about 1e-6 (measured: 5e-7). Weighting the samples per share instead (each share's own mean
# reconstruction error and mean activation ρ̄, the gradients averaged) moves them by 9e-3 in this run.
TOLERANCE = 1e-5
# Regularisers strong enough to shape the model: errors in [0, 1] intensities (--intensity-scale 1),
# λ = 1e-3 and β = 0.1, ρ = 0.2.
OPTIONS = ["--patch-size", "7", "--hidden", "4x4", "--patches", "301", "--batch-size", "29", "--threads", "1",
           "--epochs", str(EPOCHS), "--seed", "5", "--intensity-scale", "1", "--weight-decay", "1e-3",
           "--sparsity-weight", "0.1", "--sparsity-target", "0.2"]


def train_options(folders, out, *extra):
    return ["train", "--images", str(folders / "train"), "--out", str(out), *OPTIONS, *extra]


def model_of(out):
    return load_checkpoint(str(out / "checkpoint.pt"), "superres")["model"]


@pytest.fixture(scope="module")
def single_process(folders, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("single")
    assert cli.main(train_options(folders, out)) == 0
    return model_of(out)


@pytest.fixture(scope="module")
def two_then_three_processes(folders, tmp_path_factory):  # noqa: F811
    """(model, records of the 2 processes interrupted after epoch STOP_AFTER_EPOCH, records of the
    3 processes that resumed the run)."""
    out, first, rest = (tmp_path_factory.mktemp(name) for name in ("resumed", "first_records", "rest_records"))
    torchrun(2, first, "--stop-after-epoch", str(STOP_AFTER_EPOCH), "superres", *train_options(folders, out))
    assert statuses(records(first, 2)) == [INTERRUPTED] * 2
    assert load_checkpoint(str(out / "checkpoint.pt"), "superres")["epoch"] == STOP_AFTER_EPOCH
    torchrun(3, rest, "superres", *train_options(folders, out, "--resume"))
    assert statuses(records(rest, 3)) == [0, 0, 0]
    return model_of(out), records(first, 2), records(rest, 3)


def test_each_process_trains_on_its_share_of_every_batch(two_then_three_processes):
    _, first, rest = two_then_three_processes
    shares = {2: [[14] * 10 + [5], [15] * 10 + [6]], 3: [[9] * 10 + [3], [10] * 10 + [4], [10] * 10 + [4]]}
    for run, epochs in ((first, STOP_AFTER_EPOCH), (rest, EPOCHS - STOP_AFTER_EPOCH)):
        for rank, record in enumerate(run):
            assert record["share_sizes"] == shares[len(run)][rank] * epochs


def test_only_rank_0_writes_checkpoints_and_no_gloo_thread_is_left(two_then_three_processes):
    _, first, rest = two_then_three_processes
    assert [record["checkpoints"] for record in first] == [list(range(1, STOP_AFTER_EPOCH + 1)), []]
    assert [record["checkpoints"] for record in rest] == [list(range(STOP_AFTER_EPOCH + 1, EPOCHS + 1)), [], []]
    for record in [*first, *rest]:
        assert record["gloo_threads_after_leave"] == []


def test_two_then_three_processes_train_the_model_of_one_process(single_process, two_then_three_processes):
    model, _, _ = two_then_three_processes
    assert model.keys() == single_process.keys()
    differences = {name: (model[name] - parameter).abs().max().item() for name, parameter in single_process.items()}
    assert max(differences.values()) <= TOLERANCE, differences


def test_lbfgs_under_torchrun_is_refused_in_one_line(folders, tmp_path):  # noqa: F811
    """Exit status 2 on every rank, one line each naming the option; nothing written at --out."""
    record_dir = tmp_path / "records"
    stderr = torchrun(2, record_dir, "superres", *train_options(folders, tmp_path / "out", "--optimizer", "lbfgs"))
    for record in records(record_dir, 2):
        assert record["status"] == 2 and record["gloo_threads_after_leave"] == []
    messages = [line for line in stderr.splitlines() if line.startswith("matnet_torch.superres")]
    expected = ("matnet_torch.superres: --optimizer lbfgs runs on one process only, not 2 (its line search would "
                "decide on each process's own part of the loss)")
    assert messages == [expected, expected]
    assert not (tmp_path / "out").exists()
