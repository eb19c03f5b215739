"""The training and evaluation tools on a tiny synthetic MNIST (the data_dir fixture of conftest.py)."""
import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import requires_cuda
from matnet_torch.apps.common.checkpoint import load_checkpoint
from matnet_torch.apps.common.reproducibility import single_threaded
from matnet_torch.apps.mnist import evaluate, train, training_loop
from matnet_torch.apps.mnist.augmentation import RandomShifts
from matnet_torch.nn import MatNetClassifier

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

METRIC_KEYS = {"test_accuracy", "test_loss", "params", "epochs", "train_seconds", "seconds_per_epoch", "config"}
FIGURES = ("fig1_weights.png", "fig2_hidden_outputs.png")


def train_status(data_dir, out, *options):
    """The exit status of matnet_torch.train.main on the tiny set, one thread, small batches."""
    return train.main(["--data-dir", str(data_dir), "--out", str(out), "--threads", "1", "--validation-size", "50",
                       "--batch-size", "32", *options])


def run_train(data_dir, out, *options):
    """Trains on the tiny set (train_status), which must succeed; returns metrics.json."""
    assert train_status(data_dir, out, *options) == 0
    return json.loads((out / "metrics.json").read_text())


def assert_one_line(stderr, pattern):
    """stderr is exactly one line, matching the regular expression pattern from its start."""
    assert stderr.endswith("\n") and stderr.count("\n") == 1, stderr
    assert re.match(pattern, stderr), stderr


@pytest.fixture(scope="module")
def smoke_run(data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke")
    return out, run_train(data_dir, out, "--epochs", "2", "--seed", "1")


def test_help_lists_every_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        train.main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for option in ("--hidden", "--head", "--activation", "--optimizer", "--lr", "--schedule", "--batch-size",
                   "--epochs", "--weight-decay", "--sparsity-target", "--sparsity-weight", "--unit-norm", "--seed",
                   "--threads", "--data-dir", "--out", "--resume", "--validation-size"):
        assert option in text


def test_smoke_run_writes_metrics_checkpoint_and_figures(smoke_run):
    out, metrics = smoke_run
    assert METRIC_KEYS <= metrics.keys()
    assert 0.0 <= metrics["test_accuracy"] <= 1.0
    assert np.isfinite(metrics["test_loss"]) and metrics["test_loss"] > 0
    assert metrics["params"] == 1520 + 896 + 2570  # the paper's net: 28x28 -> 20x20 -> 16x16 -> 10
    assert metrics["epochs"] == 2 and len(metrics["history"]) == 2
    assert metrics["train_seconds"] > 0
    assert metrics["seconds_per_epoch"] == pytest.approx(metrics["train_seconds"] / 2)
    assert metrics["config"]["hidden"] == [[20, 20], [16, 16]] and metrics["config"]["seed"] == 1
    for record in metrics["history"]:
        assert 0.0 <= record["validation_accuracy"] <= 1.0 and 0.0 <= record["train_accuracy"] <= 1.0
    assert (out / "checkpoint.pt").stat().st_size > 0
    for name in FIGURES:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert (out / name).stat().st_size > 1000


def test_evaluate_reproduces_the_test_accuracy_of_metrics(smoke_run, data_dir, capsys):
    out, metrics = smoke_run
    assert evaluate.main([str(out / "checkpoint.pt"), "--data-dir", str(data_dir), "--threads", "1"]) == 0
    printed = capsys.readouterr().out
    assert float(re.search(r"test accuracy: ([0-9.]+)", printed).group(1)) == pytest.approx(metrics["test_accuracy"], abs=5e-5)
    model, _ = evaluate.load_classifier(str(out / "checkpoint.pt"))
    images, labels = evaluate.load_mnist("test", data_dir)
    accuracy, loss = evaluate.evaluate(model, evaluate.pixels(images), labels)
    assert (accuracy, loss) == (metrics["test_accuracy"], metrics["test_loss"])


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "lbfgs"])
def test_each_optimizer_trains_one_epoch(optimizer, data_dir, tmp_path):
    options = ["--optimizer", optimizer, "--epochs", "1"]
    if optimizer == "lbfgs":
        options += ["--batch-size", "1000"]  # more than the training set: one full-batch step
    metrics = run_train(data_dir, tmp_path, *options)
    assert metrics["config"]["optimizer"] == optimizer
    assert 0.0 <= metrics["test_accuracy"] <= 1.0 and np.isfinite(metrics["history"][0]["train_loss"])


def test_regularisers_and_heads_train_and_reload(data_dir, tmp_path, capsys):
    """Unit-norm reparametrisation, weight decay and sparsity together, bilinear head; evaluate rebuilds it."""
    metrics = run_train(data_dir, tmp_path, "--epochs", "1", "--unit-norm", "--weight-decay", "1e-3",
                        "--sparsity-weight", "0.1", "--head", "bilinear", "--hidden", "12x10")
    assert metrics["params"] == (12 * 28 + 10 * 28 + 12 * 10) + 10 * (12 + 10 + 1)
    model, _ = evaluate.load_classifier(str(tmp_path / "checkpoint.pt"))
    u = model.matnet_layers[0].u
    assert torch.allclose(u.norm(dim=1), torch.ones(12), atol=1e-5)
    capsys.readouterr()
    evaluate.main([str(tmp_path / "checkpoint.pt"), "--data-dir", str(data_dir), "--threads", "1"])
    assert f"test accuracy: {metrics['test_accuracy']:.4f}" in capsys.readouterr().out


def test_resume_continues_exactly(data_dir, tmp_path, monkeypatch):
    """Two epochs straight == one epoch, an interruption, then --resume (shuffling and shifts included)."""
    options = ("--epochs", "2", "--seed", "3", "--shift", "2")
    straight = run_train(data_dir, tmp_path / "straight", *options)

    save = training_loop.save_training_state

    def save_then_interrupt(*arguments):
        save(*arguments)
        raise KeyboardInterrupt  # as if the run were stopped right after its first checkpoint

    monkeypatch.setattr(training_loop, "save_training_state", save_then_interrupt)
    assert train_status(data_dir, tmp_path / "resumed", *options) == 130  # "interrupted"
    monkeypatch.setattr(training_loop, "save_training_state", save)
    assert load_checkpoint(tmp_path / "resumed" / "checkpoint.pt", "mnist")["epoch"] == 1
    resumed = run_train(data_dir, tmp_path / "resumed", *options, "--resume")

    final = [load_checkpoint(tmp_path / name / "checkpoint.pt", "mnist") for name in ("straight", "resumed")]
    assert final[0]["model"].keys() == final[1]["model"].keys()
    for name, tensor in final[0]["model"].items():
        assert torch.equal(tensor, final[1]["model"][name]), name
    assert resumed["test_accuracy"] == straight["test_accuracy"] and resumed["test_loss"] == straight["test_loss"]
    strip = [{k: v for k, v in record.items() if k != "seconds"} for record in straight["history"]]
    assert [{k: v for k, v in record.items() if k != "seconds"} for record in resumed["history"]] == strip


@pytest.mark.parametrize("out, options, status, message", [
    ("fresh", ("--resume",), 1, r"--resume: no checkpoint at \S*fresh\S*checkpoint\.pt"),
    ("smoke", ("--lr", "0.5", "--resume"), 2, r"--resume with options that differ from \S*checkpoint\.pt: --lr: 0\.1 -> 0\.5"),
    ("smoke", (), 2, r"\S*checkpoint\.pt exists; pass --resume to continue it, or choose another --out"),
], ids=["resume-nothing", "resume-changed", "overwrite"])
def test_resume_refuses_changed_options_and_fresh_runs_refuse_to_overwrite(out, options, status, message, smoke_run, data_dir, tmp_path, capsys):
    directory = smoke_run[0] if out == "smoke" else tmp_path / out
    assert train_status(data_dir, directory, "--epochs", "2", "--seed", "1", *options) == status
    assert_one_line(capsys.readouterr().err, "matnet_torch.train: " + message)


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=requires_cuda)])
def test_random_shifts_select_and_translate_each_image_within_bounds(device):
    images = torch.rand(64, 28, 28, generator=torch.Generator().manual_seed(0)).to(device)
    indices = torch.randperm(64, generator=torch.Generator().manual_seed(1))[:48].to(device)
    shifted = RandomShifts(images, 2).batch(indices, torch.Generator().manual_seed(2))
    assert shifted.shape == (48, 28, 28)
    # Each output is its own image translated by exactly one (dy, dx) in [-2, 2]², zero filled.
    padded = F.pad(images, (2,) * 4)
    shifts_seen = set()
    for image, index in zip(shifted, indices.tolist()):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if torch.equal(image, padded[index, 2 - dy:30 - dy, 2 - dx:30 - dx])]
        assert len(matches) == 1
        shifts_seen.add(matches[0])
    assert len(shifts_seen) > 10  # shifts differ between images
    assert torch.equal(RandomShifts(images, 0).batch(indices, torch.Generator()), images[indices])


def test_divergence_stops_with_a_clear_message_and_writes_no_nonfinite_checkpoint(data_dir, tmp_path, capsys):
    # A step this large overflows the weights to ±inf (at lr 1e30 sigmoid merely saturates: the loss
    # stays finite, as torch's own sigmoid would keep it).
    assert train_status(data_dir, tmp_path, "--epochs", "2", "--lr", "3e38") == 1
    assert_one_line(capsys.readouterr().err, r"matnet_torch.train: training diverged in epoch 1 \(loss (nan|inf)\); no checkpoint was written")
    assert not (tmp_path / "checkpoint.pt").exists()


def test_the_saved_model_is_a_plain_state_dict_for_a_fresh_classifier(smoke_run, data_dir):
    """torch.load(weights_only=True) alone gives a state_dict that a fresh MatNetClassifier loads strictly."""
    out, metrics = smoke_run
    state = torch.load(out / "checkpoint.pt", weights_only=True)["payload"]["model"]
    assert type(state) is dict and all(isinstance(t, torch.Tensor) for t in state.values())
    model = MatNetClassifier()  # the paper's net, as the tool's defaults
    model.load_state_dict(state)
    images, labels = evaluate.load_mnist("test", data_dir)
    assert evaluate.evaluate(model, evaluate.pixels(images), labels) == (metrics["test_accuracy"], metrics["test_loss"])


def train_in_fresh_process(data_dir, runs, *options):
    """Trains once per (out, threads) of ``runs`` in one new Python process, as a user's command would
    (MKL is configured by the training module before its first call; see common/reproducibility.py).
    Returns per run (model state_dict, history without timings)."""
    argvs = [["--data-dir", str(data_dir), "--out", str(out), "--threads", str(threads), "--epochs", "2",
              "--seed", "5", "--shift", "2", "--validation-size", "50", "--batch-size", "128", *options]
             for out, threads in runs]
    script = "import json, sys; from matnet_torch.apps.mnist import train; " \
             "sys.exit(max(train.main(argv) for argv in json.loads(sys.argv[1])))"
    environment = {key: value for key, value in os.environ.items() if key != "MKL_CBWR"}
    environment["PYTHONPATH"] = os.pathsep.join([REPOSITORY, environment.get("PYTHONPATH", "")])
    subprocess.run([sys.executable, "-c", script, json.dumps(argvs)], env=environment, check=True, capture_output=True)
    results = []
    for out, _ in runs:
        history = json.loads((out / "metrics.json").read_text())["history"]
        results.append((load_checkpoint(out / "checkpoint.pt", "mnist")["model"],
                        [{k: v for k, v in record.items() if k != "seconds"} for record in history]))
    return results


def assert_same_training(first, second):
    assert first[1] == second[1]  # losses and accuracies of every epoch
    assert first[0].keys() == second[0].keys()
    for key, tensor in first[0].items():
        assert torch.equal(second[0][key], tensor), key


# Batches of 128 images are 8 blocks of 16 samples for the CPU kernels, split between two threads.
DETERMINISM_OPTIONS = {"sgd-vec": (), "adam-bilinear": ("--optimizer", "adam", "--head", "bilinear", "--weight-decay", "1e-3")}


@pytest.fixture(scope="module", params=list(DETERMINISM_OPTIONS))
def seeded_runs(request, data_dir, tmp_path_factory):
    """{(process, threads): result} of the same seeded run with 1 and 2 threads in each of two processes."""
    results = {}
    for process in ("a", "b"):
        runs = [(tmp_path_factory.mktemp(f"{process}{threads}"), threads) for threads in (1, 2)]
        for (_, threads), result in zip(runs, train_in_fresh_process(data_dir, runs, *DETERMINISM_OPTIONS[request.param])):
            results[process, threads] = result
    return results


@pytest.mark.parametrize("threads", [1, 2])
def test_training_is_bit_for_bit_deterministic_run_to_run(seeded_runs, threads):
    assert_same_training(seeded_runs["a", threads], seeded_runs["b", threads])


def test_training_is_bit_for_bit_deterministic_across_thread_counts(seeded_runs):
    """The CPU kernels sum dU, dV, dB in fixed slots of samples (csrc/cpu/lanes/bilinear_lanes.h),
    and MKL runs in COMPATIBLE mode (apps/common/reproducibility.py), so threads change nothing."""
    assert_same_training(seeded_runs["a", 1], seeded_runs["a", 2])


def head_step(head, threads):
    """(logits, gradients) of one step of a seeded classifier with a single-threaded head on 22 images
    (an epoch's partial last batch, whose rows MKL splits differently for 1 and 2 threads), computed
    with ``threads`` threads, which must be in force again afterwards."""
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        torch.manual_seed(0)
        model = MatNetClassifier(head=head)
        single_threaded(model.head)
        images, labels = torch.rand(22, 28, 28), torch.randint(0, 10, (22,))
        logits = model(images)
        torch.nn.functional.cross_entropy(logits, labels).backward()
        assert torch.get_num_threads() == threads
        return logits.detach(), [parameter.grad for parameter in model.parameters()]
    finally:
        torch.set_num_threads(previous)


@pytest.mark.parametrize("head", ["vec", "bilinear"])
def test_single_threaded_heads_give_the_same_bits_for_every_thread_count(head):
    (logits_1, gradients_1), (logits_2, gradients_2) = head_step(head, 1), head_step(head, 2)
    assert torch.equal(logits_1, logits_2)
    assert all(torch.equal(first, second) for first, second in zip(gradients_1, gradients_2))


class _FailingLinear(torch.nn.Linear):
    """A Linear that raises in its forward (``fail="forward"``) or in its backward (``fail="backward"``,
    from a hook on its output), as an error or an out-of-memory would."""

    def __init__(self, fail):
        super().__init__(4, 2)
        self.fail = fail

    def forward(self, x):
        if self.fail == "forward":
            raise RuntimeError("forward failed")
        y = super().forward(x)
        if self.fail == "backward" and y.requires_grad:
            y.register_hook(lambda grad: (_ for _ in ()).throw(RuntimeError("backward failed")))
        return y


@pytest.fixture
def two_threads():
    """Two intra-op threads while the test runs, the previous count restored after it."""
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(previous)


@pytest.mark.parametrize("fail", ["forward", "backward"])
def test_single_threaded_restores_the_thread_count_after_an_exception(two_threads, fail):
    head = single_threaded(_FailingLinear(fail))
    x = torch.rand(3, 4, requires_grad=True)
    with pytest.raises(RuntimeError, match=f"{fail} failed"):
        head(x * 2).sum().backward()
    assert torch.get_num_threads() == two_threads


def test_single_threaded_restores_the_thread_count_when_the_backward_stops_before_x(two_threads):
    head = single_threaded(torch.nn.Linear(4, 2))
    x = torch.rand(3, 4, requires_grad=True)
    output = head(x * 2)
    assert torch.get_num_threads() == two_threads
    (weight_grad,) = torch.autograd.grad(output.sum(), [head.weight])  # never reaches x
    assert torch.get_num_threads() == two_threads
    torch.testing.assert_close(weight_grad, (x * 2).detach().sum(0).expand(2, 4))
    output = head(x * 2)  # a forward whose backward never comes
    del output
    assert torch.get_num_threads() == two_threads


class _RecordingLinear(torch.nn.Linear):
    """A Linear that notes the thread count in its forward and in its backward."""

    def __init__(self, seen):
        super().__init__(4, 2)
        self.seen = seen

    def forward(self, x):
        self.seen.append(("forward", torch.get_num_threads()))
        y = super().forward(x)
        if y.requires_grad:
            y.register_hook(lambda grad: self.seen.append(("backward", torch.get_num_threads())))
        return y


def test_single_threaded_runs_single_threaded_and_gives_the_gradients_of_the_module(two_threads):
    seen = []
    head = single_threaded(_RecordingLinear(seen))
    reference = torch.nn.Linear(4, 2)
    reference.load_state_dict(head.state_dict())
    x = torch.rand(3, 4, dtype=torch.float32, requires_grad=True)
    hidden = x * 2
    hidden.register_hook(lambda grad: seen.append(("after", torch.get_num_threads())))
    head(hidden).square().sum().backward()
    expected_x = torch.autograd.grad(reference(x * 2).square().sum(), [x, *reference.parameters()])
    assert torch.equal(x.grad, expected_x[0])
    assert all(torch.equal(p.grad, e) for p, e in zip(head.parameters(), expected_x[1:]))
    assert seen == [("forward", 1), ("backward", 1), ("after", 2)]
    with torch.no_grad():
        assert head(torch.rand(3, 4)).shape == (3, 2)
    assert torch.get_num_threads() == two_threads


@requires_cuda
@pytest.mark.parametrize("cuda_graph", [False, True], ids=["eager", "cuda-graph"])
def test_training_on_cuda_follows_the_cpu_run(cuda_graph, data_dir, tmp_path):
    """The same seeded run on the GPU (initialised on the CPU, batches drawn on the CPU) stays within
    float32 rounding of the CPU run over 20 steps; its checkpoint evaluates on the CPU."""
    options = ("--epochs", "2", "--seed", "2", "--batch-size", "16")
    cpu = run_train(data_dir, tmp_path / "cpu", *options)
    cuda = run_train(data_dir, tmp_path / "cuda", *options, "--device", "cuda", *(["--cuda-graph"] if cuda_graph else []))
    for cpu_record, cuda_record in zip(cpu["history"], cuda["history"]):
        assert cuda_record["train_loss"] == pytest.approx(cpu_record["train_loss"], rel=1e-4)
    cpu_model = load_checkpoint(tmp_path / "cpu" / "checkpoint.pt", "mnist")["model"]
    cuda_model = load_checkpoint(tmp_path / "cuda" / "checkpoint.pt", "mnist")["model"]
    for key, tensor in cpu_model.items():
        torch.testing.assert_close(cuda_model[key], tensor, rtol=1e-4, atol=1e-5)
    assert evaluate.main([str(tmp_path / "cuda" / "checkpoint.pt"), "--data-dir", str(data_dir)]) == 0
