"""Applications of matnet_torch: command-line tools built from one shared library.

    apps/common/   what every app shares (read each module's docstring for its API):
                   checkpoint.py  data-only, checksummed checkpoints: save_checkpoint, load_checkpoint,
                                  CheckpointError, payload_layout
                   cli.py         one-line errors and exit statuses: run_tool, ArgumentParser,
                                  ToolError (1), UsageError (2), output_directory
                   progress.py    progress_bar, the training loops' transient tqdm bar
                   figures.py     mosaic, grid, show_image, save_figure (matplotlib, Agg)
                   optimization.py  make_optimizer, make_scheduler: sgd/adam/lbfgs, cosine/step/none
                   options.py     matrix_size, option_flag, require, differing_options
                   training_state.py  save_training_state, restore_training_state: the per-epoch
                                  checkpoint of a training run and --resume
                   devices.py     DEVICES, training_device: the --device option, checked up front
                   reproducibility.py  thread_independent_blas, single_threaded: bits independent of --threads
                   training_step.py  training_step(objective, optimizer, cuda_graph, processes): one
                                  optimiser step, eager or replayed from a CUDA graph (--cuda-graph)
                   distributed.py  join_processes, Processes, GlobalBatch: exact data parallelism
                                  under torchrun (each process's part of the global batch's objective)
    apps/mnist/    the MNIST classifier (paper section 4.1): ``python -m matnet_torch.train`` and
                   ``python -m matnet_torch.evaluate``
    apps/superres/ super-resolution with the multimodal autoencoder (paper section 4.2):
                   ``python -m matnet_torch.superres train|eval|upscale``

An app is a package with a ``main(argv=None) -> int`` per command that wraps its body in
``common.cli.run_tool``, saves and loads models only through ``common.checkpoint`` with its own
``kind``, and keeps its configuration a plain dict (stored in the checkpoint and its metrics).
"""
