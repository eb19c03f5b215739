"""Every bad input to the MNIST tools is one line on stderr naming the file or option, with exit status 2
for the command line and 1 for everything else, and nothing is trained on bad input.

The tables below are also the list of bad-input classes the tools were tried with."""
import gzip
import re
import shutil
import struct

import numpy as np
import pytest
import torch

from matnet_torch.apps.common.checkpoint import save_checkpoint
from matnet_torch.apps.mnist import evaluate, train
from matnet_torch.data.idx import encode_idx, read_idx
from conftest import CUDA_AVAILABLE
from test_checkpoint import RunsCode, flip

IMAGES, LABELS = "{}-images-idx3-ubyte.gz", "{}-labels-idx1-ubyte.gz"


def one_line(capsys, prog, pattern):
    """Asserts that stderr is exactly one line, 'prog: ' then the regular expression pattern."""
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.endswith("\n"), err
    assert re.match(re.escape(f"matnet_torch.{prog}: ") + pattern, err), err


def train_status(data_dir, out, *options):
    return train.main(["--data-dir", str(data_dir), "--out", str(out), "--epochs", "1", "--batch-size", "50",
                       "--validation-size", "50", *options])


@pytest.fixture(scope="module")
def trained(data_dir, tmp_path_factory):
    """The checkpoint of a one-epoch run on the tiny set."""
    out = tmp_path_factory.mktemp("trained")
    assert train_status(data_dir, out) == 0
    return out / "checkpoint.pt"


# --- data files -------------------------------------------------------------------------------------

def idx_gz(array) -> bytes:
    return gzip.compress(encode_idx(np.asarray(array)))


def random_images(count, height=28, width=28):
    return np.random.default_rng(1).integers(0, 256, (count, height, width), dtype=np.uint8)


# name -> (how to damage the files of one split: {file name pattern: function of the split's image
# count n giving the file's new bytes, or None to delete it}, the message). The patterns take the
# split's prefix; messages start with the damaged path (re-escaped by the test).
DATA_DAMAGE = {
    "missing-file": ({LABELS: None}, r"MNIST file {prefix}-labels-idx1-ubyte not found in {dir}"),
    "truncated": ({IMAGES: lambda n: gzip.compress(encode_idx(random_images(n))[:-100])}, r"{images}: truncated: shape \({n}, 28, 28\)"),
    "bad-magic": ({IMAGES: lambda n: b"\x00\x00\x07\x03" + encode_idx(random_images(n))[4:]}, r"{images}: not an IDX file: magic number 0x00000703"),
    "corrupt-gzip": ({IMAGES: lambda n: idx_gz(random_images(n))[:-30]}, r"{images}: corrupt gzip stream"),
    "bad-labels": ({LABELS: lambda n: idx_gz(np.full(n, 10, np.uint8))}, r"{labels}: labels must be 0..9, found 10 at index 0"),
    "count-mismatch": ({LABELS: lambda n: idx_gz(np.zeros(n - 1, np.uint8))}, r"{images} holds {n} images but {labels} holds {fewer} labels"),
    "wrong-image-size": ({IMAGES: lambda n: idx_gz(random_images(n, 28, 27))}, r"{images}: images of \(28, 28\) pixels expected"),
    "wrong-element-type": ({IMAGES: lambda n: idx_gz(random_images(n).astype(np.int16))}, r"{images}: magic number 0x00000803 expected"),
    # Sizes whose product wraps around in 64-bit arithmetic, with a few payload bytes.
    "overflowing-header": ({IMAGES: lambda n: gzip.compress(struct.pack(">4I", 0x0803, *[2**32 - 1] * 3) + bytes(16))},
                           r"{images}: truncated: shape \(4294967295, 4294967295, 4294967295\)"),
    "no-images": ({IMAGES: lambda n: idx_gz(random_images(0)), LABELS: lambda n: idx_gz(np.zeros(0, np.uint8))}, r"{images}: holds no images"),
}


def damaged_copy(data_dir, tmp_path, prefix, damage):
    """A copy of the tiny set in tmp_path/data with the files of prefix replaced (or deleted) as damage says."""
    directory = tmp_path / "data"
    shutil.copytree(data_dir, directory)
    count = len(read_idx(directory / IMAGES.format(prefix)))
    for pattern, content in damage.items():
        path = directory / pattern.format(prefix)
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content(count))
    return directory


TOOL_SPLITS = [("train", "train"), ("train", "t10k"), ("evaluate", "t10k")]  # (tool, the split it reads)


@pytest.mark.parametrize("tool, prefix", TOOL_SPLITS, ids=["train-train", "train-test", "evaluate-test"])
@pytest.mark.parametrize("case", DATA_DAMAGE)
def test_bad_data_files(case, tool, prefix, data_dir, trained, tmp_path, capsys):
    damage, message = DATA_DAMAGE[case]
    directory = damaged_copy(data_dir, tmp_path, prefix, damage)
    if tool == "train":
        status = train_status(directory, tmp_path / "out")
        assert not (tmp_path / "out").exists()  # refused before any training or output
    else:
        status = evaluate.main([str(trained), "--data-dir", str(directory)])
    assert status == 1
    paths = {"dir": directory, "images": directory / IMAGES.format(prefix), "labels": directory / LABELS.format(prefix)}
    n = len(read_idx(data_dir / IMAGES.format(prefix)))
    one_line(capsys, tool, message.format(prefix=prefix, n=n, fewer=n - 1, **{k: re.escape(str(v)) for k, v in paths.items()}))


@pytest.mark.parametrize("tool", ["train", "evaluate"])
@pytest.mark.parametrize("kind, message", [("missing", "no such directory"), ("file", "not a directory")])
def test_data_dir_that_is_not_a_directory(tool, kind, message, trained, tmp_path, capsys):
    directory = tmp_path / "mnist"
    if kind == "file":
        directory.write_bytes(b"")
    status = train_status(directory, tmp_path / "out") if tool == "train" else evaluate.main([str(trained), "--data-dir", str(directory)])
    assert status == 1
    one_line(capsys, tool, re.escape(f"{directory}: {message}"))


# --- options ----------------------------------------------------------------------------------------

BAD_OPTIONS = [
    (("--weight-decay", "-1"), r"--weight-decay must be a finite number >= 0, got -1.0"),
    (("--weight-decay", "inf"), r"--weight-decay must be a finite number >= 0, got inf"),
    (("--sparsity-weight", "-0.1"), r"--sparsity-weight must be a finite number >= 0, got -0.1"),
    (("--sparsity-target", "0"), r"--sparsity-target must be in \(0, 1\)"),
    (("--sparsity-target", "nan"), r"--sparsity-target must be in \(0, 1\)"),
    (("--sparsity-weight", "0.1", "--activation", "relu"), r"the sparsity penalty \(--sparsity-weight\) needs .* got --activation relu"),
    (("--lr", "nan"), r"--lr must be a finite number > 0, got nan"),
    (("--lr", "inf"), r"--lr must be a finite number > 0, got inf"),
    (("--lr", "0"), r"--lr must be a finite number > 0, got 0.0"),
    (("--lr", "-0.1"), r"--lr must be a finite number > 0, got -0.1"),
    (("--shift", "28"), r"--shift must be in 0..27 \(images are 28x28\), got 28"),
    (("--shift", "100"), r"--shift must be in 0..27"),
    (("--shift", "-1"), r"--shift must be in 0..27"),
    (("--validation-size", "200"), r"--validation-size 200 leaves no training images: the training set holds 200"),
    (("--validation-size", "60000"), r"--validation-size 60000 leaves no training images"),
    (("--validation-size", "-1"), r"--validation-size must be >= 0, got -1"),
    (("--epochs", "0"), r"--epochs must be a positive integer, got 0"),
    (("--batch-size", "0"), r"--batch-size must be a positive integer, got 0"),
    (("--threads", "0"), r"--threads must be a positive integer, got 0"),
    (("--seed", "-1"), r"--seed must be in 0..2\*\*63-1, got -1"),
    (("--hidden", "0x5"), r"argument --hidden: matrix sizes must be positive, got '0x5' \(see --help\)"),
    (("--hidden", "big"), r"argument --hidden: expected a matrix size ROWSxCOLUMNS such as 20x20, got 'big'"),
    (("--epochs", "ten"), r"argument --epochs: invalid int value: 'ten'"),
    (("--optimizer", "rmsprop"), r"argument --optimizer: invalid choice: 'rmsprop'"),
    (("--learning-rate", "0.1"), r"unrecognized arguments: --learning-rate 0.1"),
    (("--cuda-graph",), r"--cuda-graph needs --device cuda and --optimizer sgd or adam, got --device cpu --optimizer sgd"),
    (("--device", "tpu"), r"argument --device: invalid choice: 'tpu'"),
]


@pytest.mark.parametrize("options, message", BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS])
def test_nonsense_options_are_refused_up_front(options, message, data_dir, tmp_path, capsys):
    assert train_status(data_dir, tmp_path / "out", *options) == 2
    one_line(capsys, "train", message)
    assert not (tmp_path / "out").exists()


@pytest.mark.skipif(CUDA_AVAILABLE, reason="CUDA is available here")
def test_device_cuda_without_cuda(data_dir, tmp_path, capsys):
    assert train_status(data_dir, tmp_path / "out", "--device", "cuda") == 2
    one_line(capsys, "train", r"--device cuda: (torch \S+ sees no CUDA GPU|this build of matnet_torch has no CUDA kernels)")


@pytest.mark.parametrize("argv, message", [
    ([], r"give either a CHECKPOINT or --pretrained NAME"),
    (["c.pt", "--threads", "0"], r"--threads must be a positive integer, got 0"),
])
def test_evaluate_options(argv, message, capsys):
    assert evaluate.main(argv) == 2
    one_line(capsys, "evaluate", message)


@pytest.mark.parametrize("where, message", [("file", "is a file, not a directory"), ("under-a-file", "cannot create the directory: Not a directory")])
def test_unusable_output_directory(where, message, data_dir, tmp_path, capsys):
    (tmp_path / "file").write_bytes(b"")
    out = tmp_path / "file" if where == "file" else tmp_path / "file" / "run"
    assert train_status(data_dir, out) == 1
    one_line(capsys, "train", re.escape(f"--out {out}: {message}"))


# --- checkpoints --------------------------------------------------------------------------------------

def checkpoint_file(case, trained, directory):
    """directory/checkpoint.pt holding the bad checkpoint ``case`` (a path that may not exist)."""
    path = directory / "checkpoint.pt"
    directory.mkdir(exist_ok=True)
    weights = torch.load(trained, weights_only=True)["payload"]["model"]
    content = {
        "missing": None,
        "garbage": bytes(range(256)) * 4,
        "empty": b"",
        "truncated": trained.read_bytes()[:1000],
        "flipped-weights": flip(trained.read_bytes(), next(iter(weights.values())).numpy().tobytes()[:64]),
    }
    if case == "directory":
        path.mkdir()
    elif case == "foreign-state-dict":
        torch.save(weights, path)  # a plain state_dict, as other tools write
    elif case == "code":
        torch.save({"format": "matnet_torch checkpoint", "model": RunsCode(directory / "code-ran")}, path)
    elif case == "other-app":
        save_checkpoint(path, {"model": weights}, kind="superres")
    elif case == "not-a-classifier":
        save_checkpoint(path, {"model": weights}, kind="mnist")  # no config: a payload of another layout
    elif content[case] is not None:
        path.write_bytes(content[case])
    return path


BAD_CHECKPOINTS = {
    "missing": "no such file",
    "directory": "is a directory, not a checkpoint file",
    "empty": "empty file, not a checkpoint",
    "garbage": r"not a torch checkpoint file \(UnpicklingError\)",
    "truncated": "damaged or truncated torch file",
    "flipped-weights": "damaged: the SHA-256 of its contents is",
    "foreign-state-dict": "not a matnet_torch checkpoint: the torch file holds a dict with keys",
    "code": r"refused: loading it would call (posix|os)\.system",
    "other-app": "a 'superres' checkpoint, not a 'mnist' one",
    "not-a-classifier": "does not hold a MNIST classifier: KeyError: 'config'",
}


@pytest.mark.parametrize("case", BAD_CHECKPOINTS)
def test_evaluate_refuses_bad_checkpoints(case, trained, data_dir, tmp_path, capsys):
    path = checkpoint_file(case, trained, tmp_path / "run")
    assert evaluate.main([str(path), "--data-dir", str(data_dir)]) == 1
    one_line(capsys, "evaluate", re.escape(f"{path}: ") + BAD_CHECKPOINTS[case])
    assert not (tmp_path / "run" / "code-ran").exists()


RESUME_MESSAGES = dict(BAD_CHECKPOINTS, **{"not-a-classifier": "does not hold a 'mnist' training state: KeyError: 'config'"})


@pytest.mark.parametrize("case", ["flipped-weights", "code", "garbage", "directory", "other-app", "not-a-classifier"])
def test_resume_refuses_bad_checkpoints(case, trained, data_dir, tmp_path, capsys):
    path = checkpoint_file(case, trained, tmp_path / "run")
    assert train_status(data_dir, tmp_path / "run", "--resume") == 1
    one_line(capsys, "train", re.escape(f"{path}: ") + RESUME_MESSAGES[case])
    assert not (tmp_path / "run" / "code-ran").exists()


def test_debug_shows_the_traceback(trained, tmp_path, capsys):
    assert evaluate.main([str(tmp_path / "none.pt"), "--debug"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and err.endswith(f"matnet_torch.evaluate: {tmp_path / 'none.pt'}: no such file\n")
