"""The super-resolution app (paper section 4.2), built on ``matnet_torch.apps.common``, the
autoencoder ``matnet_torch.nn.MultimodalMatNetAutoencoder`` and the image operations of
``matnet_torch.imaging``.

    config.py         the options of train -> a validated plain config dict -> the model
    data.py           which image files, their luminance, the training patches
    training_loop.py  the paper's objective by batches, checkpoint after every epoch, --resume
    upscaling.py      a model from its directory; ×s upscaling of whole images (luminance by MatNet,
                      chroma bicubic)
    figures.py        comparison panels (paper Fig. 4) and the learned weights (Fig. 3)
    train.py, evaluate.py, upscale.py
                      the commands train, eval and upscale
    cli.py            ``python -m matnet_torch.superres COMMAND``
"""
