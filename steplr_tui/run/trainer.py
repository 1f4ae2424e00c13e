"""The built-in trainer: MNIST on in-memory tensors, in plain torch, through the tracker.

`train(config, emit, ...)` runs the classic example's loop: the model on images
scaled to [0, 1], CrossEntropyLoss, Adam (or SGD), shuffled batches, and
`scheduler.step()` once per epoch after the epoch's `optimizer.step()` calls. It
records and steers through `tracker.Tracker`, the same code a user's script
goes through with `steplr_tui.track`: progress, epochs, live edits at epoch
boundaries and stops before batches. It knows nothing of Textual.

Speed comes from holding the whole uint8 dataset as one tensor (on the GPU when
training there), batching by indexing it, and, for the reference model in one
process, a step that calls autograd's own kernels directly (`fast_step.py`,
same numbers bit for bit). Under torch.distributed each rank trains on its
shard of the same permutation with DistributedDataParallel, which averages the
gradients.
"""

from __future__ import annotations

import gc
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from steplr_tui.run import datasets
from steplr_tui.run.checkpoint import CheckpointError, restore, save_checkpoint
from steplr_tui.run.control import ControlReader, Steering
from steplr_tui.run.distributed import DistContext
from steplr_tui.run.fast_step import autograd_step, make_train_step
from steplr_tui.run.models import MODEL_DESCRIPTIONS, make_model
from steplr_tui.run.record import RecordError
from steplr_tui.run.tracker import (
    PROGRESS_INTERVAL_S,
    RunFailure,
    RunStopped,
    Tracker,
    TrackingError,
    apply_edit,
)
from steplr_tui.runfolder import Event, Notice, RunEnded, RunStarted, Status
from steplr_tui.runfolder.checkpoints import KeepPolicy, keep_checkpoint
from steplr_tui.runfolder.params import FieldError, TrainConfig
from steplr_tui.runfolder.paths import resolve_data_dir
from steplr_tui.runfolder.schedule import ScheduleEdit

EVAL_BATCH = {"linear": 10_000, "mlp": 10_000, "cnn": 1_000}

# Truthy means stop; a string says why (a signal, the app quitting).
StopCheck = Callable[[], "bool | str"]
Emit = Callable[[Event], None]

__all__ = ["RunFailure", "apply_edit", "train"]


@contextmanager
def _frozen_heap() -> Iterator[None]:
    """Hide the objects that exist before the run from the garbage collector.

    torch and Textual leave about 400,000 objects on the heap, and each full
    collection walked all of them while holding the GIL: up to 0.3 s at a time,
    several times a run, with training stalled. Frozen, they are not walked until
    the run ends and gives them back.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


@contextmanager
def _threads(count: int) -> Iterator[None]:
    """torch's intra-op threads for the run (0: leave torch's default), restored after."""
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        if count:
            torch.set_num_threads(before)


def resolve_device(choice: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then the CPU; an explicit choice must be available."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if choice == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if choice.startswith("cuda") and not cuda:
        raise RunFailure(
            "device cuda was asked for, but torch sees no CUDA GPU: use --device auto or cpu"
        )
    if choice == "mps" and not mps:
        raise RunFailure(
            "device mps was asked for, but this torch has no MPS support: use --device auto or cpu"
        )
    return torch.device(choice)


def describe_device(device: torch.device) -> str:
    """The device in words: 'cpu (2 threads)', 'cuda:0 NVIDIA H200'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} {torch.cuda.get_device_name(index)}"
    if device.type == "mps":
        return "mps (Apple GPU)"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'s' if threads != 1 else ''})"


def build_model(config: TrainConfig, device: torch.device):
    """Model, optimizer and StepLR, seeded so the same seed gives the same initial weights."""
    torch.manual_seed(config.seed)
    model = make_model(config.model).to(device)
    if config.optimizer == "sgd":
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr, momentum=config.momentum)
    else:
        # The fused kernel does the same arithmetic in one call per parameter
        # instead of about ten: 83 us -> 41 us a step on this 2-core CPU
        # (benchmarks/). Not every device has it; fall back to the default.
        try:
            optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, fused=True)
        except (RuntimeError, ValueError, TypeError):
            optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    return model, optimizer, make_scheduler(config, optimizer)


def make_scheduler(config: TrainConfig, optimizer: torch.optim.Optimizer) -> Any:
    """The run's scheduler: StepLR (the seed's), or one of its alternatives (--scheduler)."""
    lr_s = torch.optim.lr_scheduler
    kind = config.scheduler
    if kind == "multistep":
        milestones = list(config.milestones) or list(
            range(config.step_size, config.epochs, config.step_size)
        )
        return lr_s.MultiStepLR(optimizer, milestones=milestones, gamma=config.gamma)
    if kind == "warmup-step":
        warmup = lr_s.LinearLR(optimizer, start_factor=0.1, total_iters=config.warmup)
        decay = lr_s.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)
        return lr_s.SequentialLR(optimizer, [warmup, decay], milestones=[config.warmup])
    if kind == "cosine":
        return lr_s.CosineAnnealingLR(optimizer, T_max=config.epochs)
    if kind == "plateau":
        return lr_s.ReduceLROnPlateau(
            optimizer, mode="max", factor=config.gamma, patience=config.step_size
        )
    return lr_s.StepLR(optimizer, step_size=config.step_size, gamma=config.gamma)


def optimizer_impl(optimizer: torch.optim.Optimizer) -> str:
    """How the optimizer computes ('fused' or 'default'), for the export's snippet."""
    return "fused" if optimizer.defaults.get("fused") else "default"


def train(
    config: TrainConfig,
    emit: Emit | None,
    *,
    should_stop: StopCheck | None = None,
    control: ControlReader | None = None,
    data: datasets.TensorData | None = None,
    progress_interval: float = PROGRESS_INTERVAL_S,
    checkpoint_path: Path | None = None,
    resume_state: dict | None = None,
    dist: DistContext | None = None,
    device: str | None = None,
    on_ready: Callable[[dict], None] | None = None,
    trial: Any = None,
    keep: KeepPolicy | None = None,
    branch_edit: ScheduleEdit | None = None,
) -> RunEnded:
    """Run one training run to the end, a stop, or a failure; return (and emit) how it ended.

    `emit` gets every event (None on ranks other than 0). `control` brings the
    requests (stop, edits) that the run decides; `should_stop` is polled with
    them (signals, an app that quits). `data` replaces loading (tests pass small
    synthetic tensors). With `checkpoint_path`, the state is saved there after
    every epoch, after the epoch's event, so a record written from the event is
    never behind the checkpoint. `resume_state` (from `checkpoint.load_checkpoint`)
    continues a run. `on_ready` is told what training will use, once loading is
    done. `trial` is a sweep's trial (rank 0 reports to its study, which may prune
    the run). `keep` says which checkpoints are kept besides the latest (see
    runfolder/checkpoints.py). `branch_edit` is a branch's edit, applied over
    `resume_state` at its boundary as a live edit would be. Never raises for a
    failure inside the run: it becomes a RunEnded.
    """
    send = emit or (lambda _event: None)
    started = time.perf_counter()
    # Library warnings would scribble over a full-screen UI: collect them and report
    # them as notices instead.
    with _frozen_heap(), _threads(config.threads), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loop: _RunLoop | None = None  # its tracker records a stop or a failure with its epochs
        try:
            config.validated()
            torch_device = resolve_device(device or config.device)
            if data is None:
                data = datasets.load(
                    config.dataset, resolve_data_dir(config.data_dir), download=config.download
                )
            if data.notice:
                send(Notice(data.notice, level="warning", persistent=True))
            loop = _RunLoop(
                config,
                send if emit else None,
                should_stop,
                control,
                data,
                torch_device,
                progress_interval,
                checkpoint_path,
                resume_state,
                dist,
                on_ready,
            )
            loop.trial = trial
            loop.keep = keep
            loop.branch_edit = branch_edit
            end = loop.run(caught).finish(Status.COMPLETED)
        except (RunStopped, _StoppedEarly):
            tracker = loop.tracker  # type: ignore[union-attr]  # only the loop's tracker stops
            end = tracker.finish(Status.STOPPED, tracker.stop_reason or "stopped")
        except Exception as exc:  # the UI must survive any failure; report, don't raise
            message = failure_message(exc, config)
            tracker = loop.tracker if loop is not None else None
            if tracker is not None:
                end = tracker.finish(Status.FAILED, message)
            else:
                end = RunEnded(Status.FAILED, message, 0, time.perf_counter() - started)
                send(end)
        _flush_warnings(caught, send)
    return end


class _StoppedEarly(Exception):
    """A stop before the epoch's end: the partial epoch is not recorded."""


class _RunLoop:
    """One run's state and loop (split from `train` so the loop reads top to bottom); its
    tracker, once made, is `train`'s to finish a stop or a failure with."""

    def __init__(
        self,
        config,
        emit,
        should_stop,
        control,
        data,
        device,
        progress_interval,
        checkpoint_path,
        resume_state,
        dist,
        on_ready,
    ) -> None:
        self.config = config
        self.emit = emit
        self.should_stop = should_stop
        self.control = control
        self.data = data
        self.device = device
        self.progress_interval = progress_interval
        self.checkpoint_path = checkpoint_path
        self.resume_state = resume_state
        self.dist = dist
        self.on_ready = on_ready
        self.trial: Any = None
        self.keep: KeepPolicy | None = None
        self.branch_edit: ScheduleEdit | None = None
        self.tracker: Tracker | None = None

    def run(self, caught: list) -> Tracker:
        config, device, dist, data = self.config, self.device, self.dist, self.data
        model, optimizer, scheduler = build_model(config, device)
        shuffle = torch.Generator().manual_seed(config.seed)
        state = self.resume_state
        if dist is not None:
            state = dist.broadcast(state if dist.is_main else None)
        if state is not None:
            restore(state, model, optimizer, scheduler, shuffle)
            if self.branch_edit:
                # What Tracker.end_epoch does with a live edit at this boundary.
                apply_edit(optimizer, scheduler, self.branch_edit)
        # uint8 on the device: 4x less memory and traffic than float; scaled per batch.
        train_x = data.train_x.reshape(len(data.train_x), -1).to(device)
        train_y = data.train_y.to(device)
        main = dist is None or dist.is_main
        # The test set is scaled once per run, not once per epoch: evaluation is then
        # a single matmul for the reference model (10,000 x 784 floats is 31 MB).
        if main:
            test_x = data.test_x.reshape(len(data.test_x), -1).to(device).float().div_(255.0)
            test_y = data.test_y.to(device)
        n, bs = len(train_x), config.batch_size
        world = dist.world_size if dist else 1
        per_rank = math.ceil(n / world)
        steps = math.ceil(per_rank / bs)
        if dist is None:
            # autograd's exact numbers, without autograd's bookkeeping, where that checks out.
            train_step, _ = make_train_step(
                model, optimizer, train_x[:bs].float().div_(255.0), train_y[:bs]
            )
        else:
            from torch.nn.parallel import DistributedDataParallel

            ddp = DistributedDataParallel(
                model, device_ids=[device.index] if device.type == "cuda" else None
            )
            train_step = autograd_step(ddp, optimizer)
        steering = None
        if main and self.control is not None and self.emit is not None:
            steering = Steering(
                self.control, self.emit, epoch=scheduler.last_epoch + 1, epochs=config.epochs
            )
        tracker = Tracker(
            optimizer,
            scheduler,
            emit=self.emit if main else None,
            steering=steering,
            dist=dist,
            external_stop=self.should_stop,
            epochs=config.epochs,
            steps_per_epoch=steps,
            batch_size=bs,
            progress_interval=self.progress_interval,
            fail_on_nonfinite=f"the run diverged; try a lower lr than {config.lr:g}",
            trial=self.trial if main else None,
            plans=config.scheduler != "step",  # StepLR: the viewer computes its staircase
        )
        self.tracker = tracker
        if self.on_ready is not None and main:
            self.on_ready({"optimizer_impl": optimizer_impl(optimizer), "model": config.model})
        tracker.send(
            RunStarted(
                device=describe_device(device),
                dataset=data.name,
                data_dir=data.source,
                n_train=n,
                n_test=len(data.test_x),
                epochs=config.epochs,
                steps_per_epoch=steps,
                batch_size=bs,
                first_epoch=tracker.first_epoch,
                world_size=world,
                backend=dist.backend if dist else "",
                global_batch=bs * world,
                model=MODEL_DESCRIPTIONS.get(config.model, config.model),
            )
        )
        tracker.send_plan()  # another scheduler than StepLR: torch's plan, for the viewer
        # On the CPU reading a loss costs nothing, so a NaN stops the run at its own
        # batch; on a GPU that would synchronise every batch, so it is caught at the
        # next progress report (a tenth of a second later), still naming its batch.
        check_each_batch = device.type == "cpu"
        eval_batch = EVAL_BATCH.get(config.model, 1000)
        plateau = config.scheduler == "plateau"
        tracker.restart_clock()
        for epoch in range(tracker.first_epoch, config.epochs + 1):
            perm = torch.randperm(n, generator=shuffle)
            if dist is not None:
                # DistributedSampler's split: pad to a multiple of the world, then stride.
                padded = torch.cat([perm, perm[: per_rank * world - n]])
                perm = padded[dist.rank :: world]
            perm = perm.to(device)
            model.train()
            for step in range(steps):
                if tracker.should_stop():
                    raise _StoppedEarly
                idx = perm[step * bs : (step + 1) * bs]
                # index_select, not train_x[idx]: the same rows, 7 us instead of 26 us a
                # batch for uint8 images on the CPU (advanced indexing takes a slow path).
                x = torch.index_select(train_x, 0, idx).float().div_(255.0)  # as ToTensor does
                loss = train_step(x, torch.index_select(train_y, 0, idx))
                if check_each_batch and not math.isfinite(value := loss.item()):
                    raise RunFailure(
                        f"loss became {value} at epoch {epoch}, batch {step + 1}: "
                        f"the run diverged; try a lower lr than {config.lr:g}"
                    )
                tracker.log_batch(loss)
            if not plateau:
                scheduler.step()
            acc, eval_seconds = math.nan, 0.0
            if main:
                eval_start = time.perf_counter()
                acc = evaluate(model, test_x, test_y, eval_batch)
                eval_seconds = time.perf_counter() - eval_start
            if plateau:  # on the test accuracy, the same on every rank
                scheduler.step(dist.broadcast(acc) if dist is not None else acc)
            ended = tracker.end_epoch({"test_acc": acc}, eval_seconds)
            _flush_warnings(caught, tracker.send)
            if main and self.checkpoint_path is not None:
                self._checkpoint(epoch, ended.lr, model, optimizer, scheduler, shuffle)
        return tracker

    def _checkpoint(self, epoch, lr_used, model, optimizer, scheduler, shuffle) -> None:
        """The latest state to checkpoint.pt, and its name in checkpoints/ (kept where the
        lr changes at this boundary, or where the user asked)."""
        path = self.checkpoint_path
        try:
            save_checkpoint(
                path,
                epoch=epoch,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                shuffle=shuffle,
            )
            if self.keep is not None:
                lr_changed = _lr_now(optimizer) != lr_used
                keep_checkpoint(path, epoch, self.keep.keeps(epoch, lr_changed))
        except OSError as exc:
            raise RunFailure(
                f"the checkpoint after epoch {epoch} could not be written in {path.parent} "
                f"({exc.strerror or exc}); every epoch is recorded and the previous checkpoint "
                "is intact: free some disk space (kept checkpoints are in checkpoints/), "
                "then steplr-tui --resume"
            ) from exc


def _lr_now(optimizer: torch.optim.Optimizer) -> float:
    lr = optimizer.param_groups[0]["lr"]
    return float(lr.item() if isinstance(lr, torch.Tensor) else lr)


@torch.no_grad()
def evaluate(
    model: nn.Module, test_x: torch.Tensor, test_y: torch.Tensor, batch: int = 10_000
) -> float:
    """Test accuracy in percent, in a few large batches of already-scaled images."""
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=test_x.device)
    for start in range(0, len(test_x), batch):
        logits = model(test_x[start : start + batch])
        correct += (logits.argmax(dim=1) == test_y[start : start + batch]).sum()
    model.train(was_training)
    return 100.0 * correct.item() / len(test_x)


def failure_message(exc: BaseException, config: TrainConfig) -> str:
    """A message that says what went wrong and what to do, without a traceback."""
    if isinstance(
        exc,
        (RunFailure, datasets.DataError, FieldError, CheckpointError, RecordError, TrackingError),
    ):
        return str(exc)
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, torch.cuda.OutOfMemoryError) or "out of memory" in text.lower():
        return (
            f"out of memory with batch size {config.batch_size}: "
            "try a smaller --batch-size, or --device cpu"
        )
    return f"training failed: {type(exc).__name__}: {text}"


def _flush_warnings(caught: list[warnings.WarningMessage], emit: Emit) -> None:
    seen = set()
    for w in caught:
        text = f"{w.category.__name__}: {w.message}"
        if text not in seen:
            seen.add(text)
            emit(Notice(text, level="warning"))
    caught.clear()
