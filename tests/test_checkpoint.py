"""Checkpoints are data: nothing in a file runs code, and every unusable file is refused with one line."""
import os
import pickle
import re
import struct

import pytest
import torch

from matnet_torch.apps.common.checkpoint import CheckpointError, load_checkpoint, plain, save_checkpoint

WEIGHT = torch.linspace(-1, 1, 400).reshape(20, 20)  # distinctive bytes to find and damage in the file
PAYLOAD = {
    "epoch": 123456789,
    "config": {"activation": "sigmoid", "hidden": [[20, 20], [16, 16]], "lr": 0.1, "data_dir": None, "unit_norm": False},
    "model": {"layer.u": WEIGHT, "layer.half": torch.ones(3, dtype=torch.bfloat16), "scalar": torch.tensor(2.5),
              "empty": torch.zeros(0, 4), "mask": torch.tensor([True, False]), "count": torch.tensor([7], dtype=torch.int64)},
    "optimizer": {"state": {0: {"momentum_buffer": torch.full((2, 2), 0.5)}}, "param_groups": [{"betas": (0.9, 0.999)}]},
    "rng": {"generator": torch.Generator().manual_seed(3).get_state()},
    "history": [{"loss": float("nan"), "accuracy": float("inf")}],
}


class RunsCode:
    """Pickles as a call of os.system that creates the file ``marker``: what a malicious checkpoint does."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def same(a, b):
    """Exact equality of plain data, tensors by dtype, shape and bits (NaN equal to NaN)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and torch.equal(
            a.reshape(-1).view(torch.uint8), b.reshape(-1).view(torch.uint8))
    if isinstance(a, dict):
        return type(b) is dict and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return type(a) is type(b) and (a == b or a != a and b != b)


def test_round_trip_is_exact_and_readable_without_matnet_torch(tmp_path):
    path = tmp_path / "checkpoint.pt"
    save_checkpoint(path, PAYLOAD, kind="test")
    assert same(load_checkpoint(path, "test"), PAYLOAD)
    record = torch.load(path, weights_only=True)  # plain torch, the safe loader
    assert record["kind"] == "test" and re.fullmatch("[0-9a-f]{64}", record["sha256"])
    assert same(record["payload"], PAYLOAD)
    assert not list(tmp_path.glob("*.tmp"))  # saved under a temporary name, then renamed


def test_state_dicts_are_stored_as_plain_dicts(tmp_path):
    model = torch.nn.Linear(3, 2)
    save_checkpoint(tmp_path / "c.pt", {"model": model.state_dict()}, kind="test")
    state = load_checkpoint(tmp_path / "c.pt", "test")["model"]
    assert type(state) is dict
    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(state)
    assert torch.equal(fresh.weight, model.weight) and torch.equal(fresh.bias, model.bias)


@pytest.mark.parametrize("value, where", [
    ({"model": torch.nn.Linear(1, 1)}, r"payload\['model'\]: Linear is not checkpoint data"),
    ({"schedule": lambda epoch: 1.0}, r"payload\['schedule'\]: function is not checkpoint data"),
    ({"history": [1, {2.0: "x"}]}, r"payload\['history'\]\[1\]: dict keys must be str or int, got float 2.0"),
    ({"sparse": torch.eye(2).to_sparse()}, r"payload\['sparse'\]: only dense tensors can be saved"),
], ids=["module", "function", "float-key", "sparse"])
def test_saving_anything_but_plain_data_is_refused(tmp_path, value, where):
    with pytest.raises(TypeError, match="checkpoint " + where):
        save_checkpoint(tmp_path / "c.pt", value, kind="test")
    assert not (tmp_path / "c.pt").exists()
    assert plain({"epoch": 1, "lr": 0.5}) == {"epoch": 1, "lr": 0.5}


def flip(data: bytes, needle: bytes) -> bytes:
    """data with every byte of the first occurrence of needle inverted (the occurrence must exist)."""
    start = data.index(needle)
    return data[:start] + bytes(b ^ 0xFF for b in needle) + data[start + len(needle):]


def saved(tmp_path, kind="test", payload=PAYLOAD) -> bytes:
    save_checkpoint(tmp_path / "good.pt", payload, kind=kind)
    return (tmp_path / "good.pt").read_bytes()


def torch_bytes(tmp_path, value) -> bytes:
    torch.save(value, tmp_path / "other.pt")
    return (tmp_path / "other.pt").read_bytes()


# name -> (the file's bytes, or "missing"/"directory", made from tmp_path; what the one-line message says).
DAMAGED = {
    "missing": (lambda d: "missing", "no such file"),
    "directory": (lambda d: "directory", "is a directory, not a checkpoint file"),
    "empty": (lambda d: b"", "empty file, not a checkpoint"),
    "garbage": (lambda d: bytes(range(256)) * 8, r"not a torch checkpoint file \(UnpicklingError\)"),
    "truncated": (lambda d: saved(d)[: len(saved(d)) // 2], r"damaged or truncated torch file"),
    # 64 bytes inside a weight tensor: exactly what torch.load itself loads without complaint.
    "flipped-weights": (lambda d: flip(saved(d), WEIGHT[5:9].numpy().tobytes()), r"damaged: the SHA-256 of its contents is"),
    "flipped-number": (lambda d: flip(saved(d), struct.pack("<i", 123456789)), r"damaged: the SHA-256"),
    "flipped-string": (lambda d: saved(d).replace(b"sigmoid", b"sigmoiD", 1), r"damaged: the SHA-256"),
    "flipped-checksum": (lambda d: re.sub(rb"[0-9a-f]{64}", lambda m: m.group()[::-1], saved(d), count=1), r"damaged: the SHA-256"),
    "foreign-state-dict": (lambda d: torch_bytes(d, {"weight": WEIGHT}),
                           r"not a matnet_torch checkpoint: the torch file holds a dict with keys \['weight'\], expected the keys format, version, kind, sha256, payload"),
    "foreign-tensor": (lambda d: torch_bytes(d, WEIGHT), r"not a matnet_torch checkpoint: the torch file holds a Tensor"),
    "newer-version": (lambda d: torch_bytes(d, {"format": "matnet_torch checkpoint", "version": 2}),
                      r"checkpoint format version 2; this matnet_torch reads version 1"),
    "other-app": (lambda d: saved(d, kind="superres"), r"a 'superres' checkpoint, not a 'test' one"),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_unusable_files_are_refused_with_one_line_naming_them(tmp_path, case):
    make, message = DAMAGED[case]
    content, path = make(tmp_path), tmp_path / "checkpoint.pt"
    if content == "directory":
        path.mkdir()
    elif content != "missing":
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path, "test")
    assert re.match(re.escape(f"{path}: ") + message, str(error.value)), str(error.value)
    assert "\n" not in str(error.value)


def unsafe_pickle_load(path):
    return pickle.loads(path.read_bytes())


def unsafe_torch_load(path):
    return torch.load(path, weights_only=False)


# How a malicious file is made, what the refusal says, and a loader that does run it. torch.save and
# pickle protocol 2 reach the call (the unpickler names it); newer protocols stop at their first opcode.
MALICIOUS = {
    "torch-save": (torch.save, r"refused: loading it would call (posix|os)\.system", unsafe_torch_load),
    "pickle-protocol-2": (lambda record, path: path.write_bytes(pickle.dumps(record, protocol=2)),
                          r"refused: loading it would call (posix|os)\.system", unsafe_pickle_load),
    "pickle-protocol-5": (lambda record, path: path.write_bytes(pickle.dumps(record, protocol=5)),
                          r"not a torch checkpoint file \(UnpicklingError\)", unsafe_pickle_load),
}


@pytest.mark.parametrize("container", MALICIOUS)
def test_a_checkpoint_that_would_run_code_is_refused_and_runs_nothing(tmp_path, container):
    write, message, unsafe_load = MALICIOUS[container]
    marker, path = tmp_path / "code-ran", tmp_path / "checkpoint.pt"
    write({"format": "matnet_torch checkpoint", "payload": {"model": RunsCode(marker)}}, path)
    with pytest.raises(CheckpointError, match=re.escape(f"{path}: ") + message):
        load_checkpoint(path, "test")
    assert not marker.exists()
    unsafe_load(path)  # the file is live: an unsafe loader runs its code (this test can fail)
    assert marker.exists()
