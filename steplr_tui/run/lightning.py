"""PyTorch Lightning: a LightningModule's run recorded and steered like any tracked loop.

`SteplrCallback()` in `Trainer(callbacks=[...])` finds the scheduler that
`configure_optimizers` returned (any torch scheduler, interval "epoch" or "step",
or none; the step family takes live edits), and goes through the same
`track()` a plain loop uses: it logs each training batch's loss, stops the Trainer
(`trainer.should_stop`) on `ctrl+s`, `steplr-tui stop` or SIGTERM, and records
each epoch with the metrics the module logged (`self.log(...)`, as
`trainer.callback_metrics` has them at the epoch's end).

Lightning steps an epoch scheduler after `on_train_epoch_end`, so an epoch is
recorded, and the live edits queued for its boundary are applied, at the next
`on_train_epoch_start` (or at `on_train_end` for the last one): after Lightning's
own `scheduler.step()`, as in a plain loop. Under Lightning's DDP strategy the
callback runs on every rank, rank 0 records, and every rank applies the same edit
and stops at the same batch. The run folder's path travels in Lightning's
checkpoints (the callback's state), so `trainer.fit(..., ckpt_path=...)` continues
the same record.

Lightning is an optional extra: `pip install 'steplr-tui[lightning]'`.
"""

from __future__ import annotations

import contextlib
import math
import os
from typing import Any

import torch

from steplr_tui.run.script_run import Run, track
from steplr_tui.run.tracker import RESERVED_METRICS, RunStopped, TrackingError

try:  # the unified package first, then the standalone one
    import lightning.pytorch as pl
except ImportError:  # pragma: no cover - depends on what is installed
    try:
        import pytorch_lightning as pl  # type: ignore[no-redef]
    except ImportError as exc:  # pragma: no cover
        raise ImportError(
            "steplr_tui.lightning needs PyTorch Lightning: pip install 'steplr-tui[lightning]'"
        ) from exc

__all__ = ["SteplrCallback"]


class SteplrCallback(pl.Callback):
    """Record and steer a Lightning run's schedule from steplr-tui (see the module docstring).

    `config` is recorded with the run (JSON values); `runs_dir` is where its folder
    goes (else $STEPLR_TUI_RUNS, else the per-user default); `resume` continues a run
    folder by hand (a Lightning checkpoint that holds the callback's state needs none).
    """

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        runs_dir: str | os.PathLike[str] | None = None,
        resume: str | os.PathLike[str] | None = None,
    ) -> None:
        super().__init__()
        self.config = dict(config or {})
        self.runs_dir = runs_dir
        self.resume = resume
        self.run: Run | None = None
        self._metrics: dict[str, float] | None = None  # the epoch ended, not yet recorded
        self._closed = False
        self.path: str | None = None  # the run folder, once known (kept after the run)

    # ---- Lightning's checkpoint --------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        return {"run_folder": self.path}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        folder = state_dict.get("run_folder")
        if folder and self.resume is None:
            self.resume = folder

    # ---- the run -----------------------------------------------------------------

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        optimizer, scheduler = _step_lr(trainer)
        config = {"model": type(pl_module).__name__, **self.config}
        steps = trainer.num_training_batches
        self.run = track(
            optimizer,
            scheduler,
            config=config,
            runs_dir=self.runs_dir,
            epochs=trainer.max_epochs if (trainer.max_epochs or 0) > 0 else None,
            steps_per_epoch=int(steps) if isinstance(steps, int) or _finite(steps) else None,
            batch_size=_batch_size(trainer),
            resume=self.resume,
        )
        self.run.__enter__()
        self.path = str(self.run.path) if self.run.path is not None else None
        self._closed = False
        self._metrics = None

    def on_train_batch_end(
        self, trainer: Any, pl_module: Any, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        run = self.run
        if run is None or self._closed:
            return
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) or (
            isinstance(loss, (int, float)) and not isinstance(loss, bool)
        ):
            run.log_batch(loss)  # a tensor stays on its device until the next report
        # Every rank asks, once a batch: under DDP the ranks agree on the batch to stop at.
        if run.should_stop():
            trainer.should_stop = True

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is not None and not self._closed:
            self._metrics = _logged(trainer.callback_metrics)

    def on_train_epoch_start(self, trainer: Any, pl_module: Any) -> None:
        self._record_epoch()  # the one before: Lightning has stepped its scheduler since

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.run is None or self._closed:
            return
        run = self.run
        with contextlib.suppress(RunStopped):  # a stop: the partial epoch is not recorded
            self._record_epoch()
        if run.stopped:
            self._close(None)
        elif trainer.max_epochs and run.epoch <= trainer.max_epochs:
            stopped = RunStopped("the Trainer stopped early (EarlyStopping or trainer.should_stop)")
            self._close(stopped)
        else:
            self._close(None)

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.run is not None and not self._closed:
            self._close(exception)

    def _record_epoch(self) -> None:
        metrics, self._metrics = self._metrics, None
        if self.run is not None and not self._closed and metrics is not None:
            self.run.end_epoch(**metrics)  # after a stop: RunStopped, for on_train_end

    def _close(self, exc: BaseException | None) -> None:
        """End the record: COMPLETED, STOPPED or FAILED, as a `with` block ends it."""
        self._closed = True
        run, self.run = self.run, None
        if run is None:
            return
        if isinstance(exc, RunStopped) and not run.stopped:
            run._tracker.stop_reason = str(exc)
        kind = type(exc) if exc is not None and not isinstance(exc, RunStopped) else None
        if isinstance(exc, RunStopped):
            run.__exit__(RunStopped, exc, None)
        else:
            run.__exit__(kind, exc, None)


def _step_lr(trainer: Any) -> tuple[torch.optim.Optimizer, Any]:
    """The optimizer and the scheduler `configure_optimizers` returned (any
    torch.optim.lr_scheduler scheduler, stepped each epoch or each step; or none)."""
    configs = getattr(trainer, "lr_scheduler_configs", []) or []
    if len(configs) > 1:
        found = ", ".join(type(c.scheduler).__name__ for c in configs)
        raise TrackingError(
            f"SteplrCallback follows one scheduler (found: {found}): return one optimizer "
            "and its scheduler from configure_optimizers"
        )
    if configs:
        cfg = configs[0]
        if cfg.frequency != 1:
            raise TrackingError(
                "SteplrCallback follows a scheduler stepped every epoch or every step: return "
                'it with "frequency": 1 (got frequency '
                f"{cfg.frequency})"
            )
        return cfg.scheduler.optimizer, cfg.scheduler
    optimizers = getattr(trainer, "optimizers", []) or []
    if len(optimizers) != 1:
        raise TrackingError(
            f"SteplrCallback follows one optimizer (found {len(optimizers)}): return one from "
            "configure_optimizers"
        )
    return optimizers[0], None


def _logged(metrics: Any) -> dict[str, float]:
    """The epoch's logged metrics as numbers; names the run records itself are left out
    (its train_loss is the mean of the logged batch losses)."""
    out: dict[str, float] = {}
    for name, value in dict(metrics).items():
        if name in RESERVED_METRICS or ("/" in name and name.split("/")[-1] in RESERVED_METRICS):
            continue
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                continue
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, float) and math.isfinite(value)


def _batch_size(trainer: Any) -> int | None:
    loader = getattr(trainer, "train_dataloader", None)
    size = getattr(loader, "batch_size", None)
    return size if isinstance(size, int) and size > 0 else None
