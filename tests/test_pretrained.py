"""The models shipped with the package (matnet_torch.pretrained): they load, still score what they
recorded, and a modified file or an unknown name is refused with one line."""
import shutil

import pytest
import torch

from matnet_torch import pretrained
from matnet_torch.apps.mnist import evaluate


def test_shipped_classifier_scores_its_recorded_accuracy(real_mnist_dir, cpu_kernels):
    """The MNIST net classifies the test set exactly as when it was exported (the same count of correct
    images under every CPU kernel variant); its loss agrees to float32 rounding: the 10,000 per-image
    losses are float32 sums of ten terms, summed per batch by torch in float32, whose relative rounding
    error stays below 1e-5 (pairwise summation: about log2(10,000) · 6e-8)."""
    recorded = pretrained.load_payload("mnist")["metrics"]
    model = pretrained.load("mnist")
    assert not model.training
    measured = pretrained.evaluate("mnist", model, data_dir=real_mnist_dir)
    assert measured["test_accuracy"] == recorded["test_accuracy"]
    assert measured["test_loss"] == pytest.approx(recorded["test_loss"], rel=1e-5)


def test_evaluate_command_uses_the_shipped_model(real_mnist_dir, capsys):
    assert evaluate.main(["--pretrained", "mnist", "--data-dir", str(real_mnist_dir)]) == 0
    accuracy = pretrained.load_payload("mnist")["metrics"]["test_accuracy"]
    assert f"test accuracy: {accuracy:.4f}" in capsys.readouterr().out


def test_evaluate_wants_one_model(capsys):
    """Neither a checkpoint nor --pretrained: tests/test_tool_errors.py."""
    assert evaluate.main(["checkpoint.pt", "--pretrained", "mnist"]) == 2
    assert "give either a CHECKPOINT or --pretrained NAME" in capsys.readouterr().err


def test_modified_file_is_refused(tmp_path, monkeypatch):
    entry = pretrained.MODELS["mnist"]
    shutil.copy(pretrained.MODELS_DIR / entry.file, tmp_path / entry.file)
    data = bytearray((tmp_path / entry.file).read_bytes())
    data[len(data) // 2] ^= 1
    (tmp_path / entry.file).write_bytes(bytes(data))
    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path)
    with pytest.raises(pretrained.PretrainedError, match=rf"{entry.file}: SHA-256 [0-9a-f]{{64}}, expected {entry.sha256}"):
        pretrained.load("mnist")


def test_missing_file_and_unknown_name(tmp_path, monkeypatch):
    with pytest.raises(pretrained.PretrainedError, match="no pretrained model 'cifar'; available: mnist"):
        pretrained.load("cifar")
    monkeypatch.setattr(pretrained, "MODELS_DIR", tmp_path)
    with pytest.raises(pretrained.PretrainedError, match="the pretrained model 'mnist' cannot be read"):
        pretrained.path("mnist")


def test_shipped_file_is_plain_data():
    """Anyone can read it without matnet_torch's loader: a dict of tensors and plain values."""
    record = torch.load(pretrained.path("mnist"), weights_only=True)
    assert record["kind"] == "mnist" and set(record["payload"]) == {"epoch", "config", "model", "metrics"}
    assert sum(weight.numel() for weight in record["payload"]["model"].values()) == 4986
