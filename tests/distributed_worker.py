"""A process of ``torchrun ... tests/distributed_worker.py RECORD_DIR [--stop-after-epoch E] TRAIN_OPTIONS``
(used by test_distributed.py): runs ``matnet_torch.train`` with TRAIN_OPTIONS and writes
RECORD_DIR/rank<R>.json with the batch sizes this process trained on and the epochs whose checkpoint it
wrote. With --stop-after-epoch, rank 0 stops as Ctrl-C would right after writing that epoch's checkpoint."""
import json
import os
import sys

from matnet_torch.apps.mnist import train, training_loop

record_dir, arguments = sys.argv[1], sys.argv[2:]
stop_after = None
if arguments[0] == "--stop-after-epoch":
    stop_after, arguments = int(arguments[1]), arguments[2:]
record = {"batch_sizes": [], "checkpoints": []}
train_on_share, save_training_state = training_loop.objective, training_loop.save_training_state


def recording_objective(model, forward_with_hidden, images, labels, config):
    record["batch_sizes"].append(len(images))
    return train_on_share(model, forward_with_hidden, images, labels, config)


def recording_save(path, kind, state, epoch, *rest):
    save_training_state(path, kind, state, epoch, *rest)
    record["checkpoints"].append(epoch)
    if epoch == stop_after:
        raise KeyboardInterrupt


training_loop.objective, training_loop.save_training_state = recording_objective, recording_save
status = train.main(arguments)
with open(os.path.join(record_dir, f"rank{os.environ['RANK']}.json"), "w") as file:
    json.dump(record, file)
sys.exit(status)
