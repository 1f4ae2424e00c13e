"""The run side: everything that runs inside a training process.

The built-in MNIST trainer and its fast step, the tracker that records and steers
any loop (the public `steplr_tui.track` included), the record writer and the
control reader of the run folder, checkpoints, torch.distributed, datasets and
models, and the launcher of detached runs. Nothing here imports Textual, plotext
or the viewer (an import-linter contract says so, see pyproject.toml).
"""
