"""A process of ``torchrun ... tests/distributed_worker.py RECORD_DIR [--stop-after-epoch E] [superres] OPTIONS``
(used by test_distributed.py and test_distributed_superres.py): runs ``matnet_torch.train`` with
OPTIONS, or with ``superres`` ``python -m matnet_torch.superres`` with OPTIONS (``train ...``), and
writes RECORD_DIR/rank<R>.json with the command's exit status, the share sizes this process trained
on, the epochs whose checkpoint it wrote and the gloo threads still running after the command
returned. With --stop-after-epoch, every process stops as Ctrl-C would when epoch E + 1 would begin
(rank 0 has written epoch E's checkpoint then).

The worker itself exits with status 0 once the record is written, whatever the command's status:
torchrun stops the other processes (SIGTERM) as soon as one fails, which would hide how they would
have ended. So a non-zero exit of a worker, and of torchrun, means a crash (at interpreter
shutdown, after the record, too)."""
import json
import os
import sys

from matnet_torch.apps.mnist import train as mnist_train, training_loop as mnist_loop
from matnet_torch.apps.superres import cli as superres_cli, train as superres_train, training_loop as superres_loop

record_dir, arguments = sys.argv[1], sys.argv[2:]
stop_after = None
if arguments[0] == "--stop-after-epoch":
    stop_after, arguments = int(arguments[1]), arguments[2:]
tool = arguments[0] == "superres"
if tool:
    arguments = arguments[1:]
training_loop = superres_loop if tool else mnist_loop
record = {"share_sizes": [], "checkpoints": [], "epochs": 0}
objective, train_epoch, save_training_state = training_loop.objective, training_loop.train_epoch, training_loop.save_training_state


def recording_objective(*arguments):
    loss, logits = objective(*arguments)
    record["share_sizes"].append(len(logits))
    return loss, logits


def recording_model(config):
    """The superres tool's autoencoder, recording the number of samples of every pass through its encoder."""
    model = build_model(config)
    model.encoder.register_forward_pre_hook(lambda module, inputs: record["share_sizes"].append(len(inputs[0][0])))
    return model


def stopping_train_epoch(*arguments):
    if record["epochs"] == stop_after:
        raise KeyboardInterrupt
    record["epochs"] += 1
    return train_epoch(*arguments)


def recording_save(path, kind, state, epoch, *rest):
    save_training_state(path, kind, state, epoch, *rest)
    record["checkpoints"].append(epoch)


def gloo_threads():
    """The names of this process's threads that gloo started (Linux names them in /proc)."""
    names = []
    for thread in os.listdir("/proc/self/task"):
        with open(f"/proc/self/task/{thread}/comm") as file:
            names.append(file.read().strip())
    return [name for name in names if "gloo" in name]


training_loop.train_epoch, training_loop.save_training_state = stopping_train_epoch, recording_save
if tool:
    build_model, superres_train.build_model = superres_train.build_model, recording_model
else:
    training_loop.objective = recording_objective
record["status"] = (superres_cli if tool else mnist_train).main(arguments)
record["gloo_threads_after_leave"] = gloo_threads()
with open(os.path.join(record_dir, f"rank{os.environ['RANK']}.json"), "w") as file:
    json.dump(record, file)
