"""The MNIST classifier app (paper section 4.1), built on ``matnet_torch.apps.common``.

    config.py         command-line options -> a validated plain config dict -> the model
    augmentation.py   --shift: randomly translated training batches
    training_loop.py  objective, optimiser, schedule, epochs, checkpoint after every epoch, --resume
    evaluate.py       test-set evaluation; ``python -m matnet_torch.evaluate CHECKPOINT``
    figures.py        the paper's Fig. 1 (weights) and Fig. 2 (hidden outputs)
    train.py          ``python -m matnet_torch.train``: data, model, fit, metrics.json, figures
"""
