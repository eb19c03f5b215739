"""Checkpoint files that are data only, checksummed, and refused with one clear line when anything is off.

API (used by every app that saves or loads a model):

    save_checkpoint(path, payload, kind)      # atomically writes the file
    payload = load_checkpoint(path, kind)     # the payload back, verified; raises CheckpointError
    with payload_layout(path, "a MNIST classifier"):
        model.load_state_dict(payload["model"])   # a KeyError, a size mismatch... -> CheckpointError
    CheckpointError                           # one-line message "PATH: what is wrong"

``payload`` is plain data: dicts (keys str or int), lists, tuples, str, int, float, bool, None and
tensors, nested freely; Mappings such as a state_dict's OrderedDict are stored as plain dicts. Store
configurations as such dicts and RNG states as the uint8 tensors ``Generator.get_state()`` returns.
``kind`` names the application ("mnist", "superres", ...) so one app refuses another's checkpoint.

The file is ``torch.save`` of ::

    {"format": "matnet_torch checkpoint", "version": 1, "kind": kind, "sha256": DIGEST, "payload": payload}

read back with ``torch.load(weights_only=True)``, whose unpickler constructs only tensors and plain
containers: a file that would call any function on loading (``os.system`` in a crafted pickle) is
refused before anything runs. DIGEST is the SHA-256 of a canonical serialisation of (kind, payload):
every value tagged with its type, containers with their length, tensors with dtype, shape and their
raw bytes in C order. It is independent of how torch lays out the zip archive, and recomputed on
loading, so a flipped byte anywhere in a weight, a number or a key is detected. Anyone can read a
checkpoint without this module: ``torch.load(path, weights_only=True)["payload"]``.
"""
import hashlib
import os
import re
import warnings
from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Dict, Iterator, Union

import torch

PathLike = Union[str, os.PathLike]

FORMAT = "matnet_torch checkpoint"
VERSION = 1
_KEYS = ("format", "version", "kind", "sha256", "payload")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, not a file, empty, damaged, foreign, of another app
    or would run code. The message is one line: the path, a colon, what is wrong."""


def plain(value: Any, where: str = "payload") -> Any:
    """``value`` as plain checkpoint data (Mappings become dicts); TypeError naming ``where`` for
    anything else, such as a module, a function or a custom object."""
    if isinstance(value, torch.Tensor):
        if value.layout != torch.strided:
            raise TypeError(f"checkpoint {where}: only dense tensors can be saved, got layout {value.layout}")
        return value.detach().cpu()  # a checkpoint written on a GPU loads anywhere
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float)):  # numpy's float64 is a float subclass: store the Python number
        return int(value) if isinstance(value, int) else float(value)
    if isinstance(value, Mapping):
        result = {}
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"checkpoint {where}: dict keys must be str or int, got {type(key).__name__} {key!r}")
            result[key] = plain(item, f"{where}[{key!r}]")
        return result
    if isinstance(value, (list, tuple)):
        items = [plain(item, f"{where}[{index}]") for index, item in enumerate(value)]
        return items if isinstance(value, list) else tuple(items)
    raise TypeError(
        f"checkpoint {where}: {type(value).__name__} is not checkpoint data "
        "(tensors, numbers, strings, None, lists, tuples and dicts only)"
    )


def _feed(hasher: "hashlib._Hash", value: Any) -> None:
    """Feeds the canonical serialisation of plain data to hasher: a type tag per value, lengths before
    the contents of strings and containers, so that distinct values never serialise alike."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().cpu().contiguous()
        hasher.update(f"T{tensor.dtype}{tuple(tensor.shape)}:".encode())
        hasher.update(tensor.reshape(-1).view(torch.uint8).numpy())  # the raw bytes, without a copy
    elif isinstance(value, str):
        encoded = value.encode("utf-8", "surrogatepass")
        hasher.update(f"S{len(encoded)}:".encode() + encoded)
    elif value is None or isinstance(value, (bool, int, float)):
        hasher.update(f"{type(value).__name__}:{value!r};".encode())  # repr(float) round-trips exactly
    elif isinstance(value, dict):
        hasher.update(f"D{len(value)}:".encode())
        for key, item in value.items():
            _feed(hasher, key)
            _feed(hasher, item)
    else:  # list or tuple
        hasher.update(f"{'L' if isinstance(value, list) else 'U'}{len(value)}:".encode())
        for item in value:
            _feed(hasher, item)


def payload_digest(kind: str, payload: Any) -> str:
    """SHA-256 (hex) of the canonical serialisation of (kind, payload); payload must be plain data."""
    hasher = hashlib.sha256()
    _feed(hasher, kind)
    _feed(hasher, payload)
    return hasher.hexdigest()


def save_checkpoint(path: PathLike, payload: Dict[str, Any], kind: str) -> None:
    """Writes ``payload`` (plain data, see the module docstring) with its checksum to ``path``.

    The file is written under a temporary name and renamed over ``path``, so an interrupted save
    keeps the previous checkpoint. Raises TypeError for a payload that is not plain data.
    """
    payload = plain(payload)
    record = {"format": FORMAT, "version": VERSION, "kind": kind, "sha256": payload_digest(kind, payload), "payload": payload}
    temporary = f"{os.fspath(path)}.tmp"
    torch.save(record, temporary)
    os.replace(temporary, path)


_ZIP_MAGIC = b"PK\x03\x04"  # torch.save writes a zip archive


def _read(path: str) -> Any:
    """torch.load(weights_only=True) of path; CheckpointError for every way the file can be unusable."""
    if not os.path.exists(path):
        raise CheckpointError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CheckpointError(f"{path}: is a directory, not a checkpoint file")
    try:
        file = open(path, "rb")
    except OSError as err:
        raise CheckpointError(f"{path}: cannot open: {err.strerror or err}") from err
    with file:
        magic = file.read(len(_ZIP_MAGIC))
        if not magic:
            raise CheckpointError(f"{path}: empty file, not a checkpoint")
        file.seek(0)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # torch warns about pickle protocols before refusing
                return torch.load(file, map_location="cpu", weights_only=True)
        except Exception as err:  # the unpickler and the zip reader raise many types for bad content
            call = re.search(r"GLOBAL (\S+)", str(err))
            if call:
                raise CheckpointError(
                    f"{path}: refused: loading it would call {call.group(1)}; a checkpoint may hold only "
                    "tensors, numbers, strings, lists and dicts"
                ) from err
            if magic == _ZIP_MAGIC:
                raise CheckpointError(f"{path}: damaged or truncated torch file ({type(err).__name__})") from err
            raise CheckpointError(f"{path}: not a torch checkpoint file ({type(err).__name__})") from err


def load_checkpoint(path: PathLike, kind: str) -> Dict[str, Any]:
    """The payload saved to ``path`` by ``save_checkpoint(path, payload, kind)``, checksum verified.

    Nothing in the file can run code. Raises CheckpointError, one line naming ``path`` and what is
    wrong, for a missing file, a directory, an empty, truncated, garbage or damaged file (checksum
    mismatch), a torch file that is not a matnet_torch checkpoint, a newer format, or another kind.
    """
    path = os.fspath(path)
    record = _read(path)
    if not (isinstance(record, dict) and record.get("format") == FORMAT):
        found = f"a dict with keys {sorted(map(str, record))[:8]}" if isinstance(record, dict) else f"a {type(record).__name__}"
        raise CheckpointError(f"{path}: not a matnet_torch checkpoint: the torch file holds {found}, expected the keys {', '.join(_KEYS)}")
    if record.get("version") != VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {record.get('version')!r}; this matnet_torch reads version {VERSION}")
    if set(record) != set(_KEYS) or not isinstance(record["sha256"], str) or not isinstance(record["payload"], dict):
        raise CheckpointError(f"{path}: damaged: the checkpoint record has keys {sorted(record)}, expected {', '.join(_KEYS)}")
    digest = payload_digest(record["kind"], record["payload"])
    if digest != record["sha256"]:
        raise CheckpointError(
            f"{path}: damaged: the SHA-256 of its contents is {digest[:16]}..., the file records "
            f"{record['sha256'][:16]}...; it was modified or corrupted after saving"
        )
    if record["kind"] != kind:
        raise CheckpointError(f"{path}: a {record['kind']!r} checkpoint, not a {kind!r} one")
    return record["payload"]


@contextmanager
def payload_layout(path: PathLike, holds: str) -> Iterator[None]:
    """Turns the errors of using a verified payload laid out otherwise than expected (a missing entry,
    weights of other shapes: a file of another version of the app) into one line,
    ``PATH: does not hold HOLDS: ...``."""
    try:
        yield
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        lines = str(err).strip().splitlines()
        reason = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
        raise CheckpointError(f"{os.fspath(path)}: does not hold {holds}: {reason}") from err
