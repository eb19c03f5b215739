"""Writes the shipped file of a pretrained model from a training run; prints the SHA-256 to put in
``matnet_torch.pretrained.MODELS``.

    python tools/export_pretrained.py mnist runs/mnist

The run's last checkpoint (``RUN_DIR/checkpoint.pt``, of the model's ``kind``) keeps its epoch, its
configuration (paths of the training machine cleared) and the model's state_dict; the optimiser's
state, random streams and history are dropped. The model is then rebuilt from that payload and
evaluated as ``pretrained.evaluate`` does, and the result stored as the payload's ``metrics``.
"""
import argparse
import hashlib
import os
import sys

from matnet_torch import pretrained
from matnet_torch.apps.common.checkpoint import load_checkpoint, save_checkpoint

# Configuration entries that name files or folders of the machine the run was trained on.
MACHINE_PATHS = ("out", "data_dir", "images")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", choices=sorted(pretrained.MODELS))
    parser.add_argument("run_dir", help="the --out directory of the training run")
    args = parser.parse_args()
    entry = pretrained.MODELS[args.name]
    run = load_checkpoint(os.path.join(args.run_dir, "checkpoint.pt"), entry.kind)
    config = {key: (None if key in MACHINE_PATHS else value) for key, value in run["config"].items()}
    config["resume"] = False
    payload = {"epoch": run["epoch"], "config": config, "model": run["model"]}
    payload["metrics"] = pretrained.evaluate(args.name, pretrained.build(args.name, payload))
    destination = pretrained.MODELS_DIR / entry.file
    destination.parent.mkdir(exist_ok=True)
    save_checkpoint(destination, payload, entry.kind)
    print(f"{destination}: {destination.stat().st_size} bytes, metrics {payload['metrics']}")
    print(f'sha256="{hashlib.sha256(destination.read_bytes()).hexdigest()}"')
    return 0


if __name__ == "__main__":
    sys.exit(main())
