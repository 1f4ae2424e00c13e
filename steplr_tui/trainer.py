"""The training loop: the reference MNIST workload on in-memory tensors, in plain torch.

`train(config, should_stop, emit)` is all the UI and the headless mode call. It
knows nothing of Textual: it reports through `emit` with the plain events of
`steplr_tui.events` and polls `should_stop` before every batch.

The model, loss, optimizer and scheduler order are those of the classic example:
`nn.Linear(784, 10)` on images scaled to [0, 1], CrossEntropyLoss, Adam (or SGD),
shuffled batches, and `scheduler.step()` once per epoch after the epoch's
`optimizer.step()` calls. Speed comes from holding the whole uint8 dataset as one
tensor (on the GPU when training there), batching by indexing it, and a step that
calls autograd's own kernels directly (`linear_step.py`, same numbers bit for bit).
Live schedule edits are taken at epoch boundaries (`take_edit`).
"""

from __future__ import annotations

import gc
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from torch import nn

from steplr_tui import dataset as datasets
from steplr_tui.checkpoint import CheckpointError, restore, save_checkpoint
from steplr_tui.config import FieldError, TrainConfig
from steplr_tui.events import BatchProgress, EpochEnd, Event, Notice, RunEnded, RunStarted
from steplr_tui.linear_step import make_train_step
from steplr_tui.paths import resolve_data_dir
from steplr_tui.schedule import ScheduleEdit

# Often enough for a live pane, rare enough that reading losses back (a host
# synchronisation on a GPU) costs the loop nothing measurable.
PROGRESS_INTERVAL_S = 0.1
EVAL_BATCH = 10_000

# Truthy means stop; a string says why (a signal, the app quitting).
StopCheck = Callable[[], "bool | str"]
Emit = Callable[[Event], None]
# Returns the edit pending at an epoch boundary, if any (see steering.EditBox.take).
TakeEdit = Callable[[], "ScheduleEdit | None"]


class RunFailure(RuntimeError):
    """A failure whose message already tells the user what to do."""


class _Stopped(Exception):
    """Raised inside the loop when should_stop() says so; carries the epochs completed."""

    def __init__(self, epochs_done: int, reason: bool | str) -> None:
        super().__init__(epochs_done)
        self.epochs_done = epochs_done
        self.reason = reason if isinstance(reason, str) else "stopped by the user"


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


def resolve_device(choice: str) -> torch.device:
    """'auto' picks CUDA, then MPS, then the CPU; an explicit choice must be available."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if choice == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if choice == "cuda" and not cuda:
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
    model = nn.Linear(28 * 28, 10).to(device)
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
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=config.step_size, gamma=config.gamma
    )
    return model, optimizer, scheduler


def train(
    config: TrainConfig,
    should_stop: StopCheck,
    emit: Emit,
    *,
    data: datasets.TensorData | None = None,
    progress_interval: float = PROGRESS_INTERVAL_S,
    checkpoint_path: Path | None = None,
    resume_state: dict | None = None,
    take_edit: TakeEdit | None = None,
) -> RunEnded:
    """Run one training run to the end, a stop, or a failure; return (and emit) how it ended.

    `data` replaces loading (tests pass small synthetic tensors). With
    `checkpoint_path`, the state is saved there after every epoch (after the
    EpochEnd is emitted, so a record written from the event is never behind the
    checkpoint); `resume_state` (from `checkpoint.load_checkpoint`) continues a run.
    `take_edit` is polled at each epoch boundary for a live schedule edit.
    Never raises for a failure inside the run: it becomes a RunEnded with status
    'failed' and a message.
    """
    clock = _Clock()
    epochs_done = 0
    # Library warnings would scribble over a full-screen UI: collect them and report
    # them as notices instead.
    with _frozen_heap(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            config.validated()
            device = resolve_device(config.device)
            if data is None:
                data = datasets.load(
                    config.dataset, resolve_data_dir(config.data_dir), download=config.download
                )
            if data.notice:
                emit(Notice(data.notice, level="warning", persistent=True))
            epochs = _run(
                config,
                should_stop,
                emit,
                data,
                device,
                clock,
                progress_interval,
                checkpoint_path,
                resume_state,
                take_edit,
            )
            for event in epochs:
                epochs_done = event.epoch
                _flush_warnings(caught, emit)
            end = RunEnded("completed", "", epochs_done, clock.elapsed())
        except _Stopped as stop:
            end = RunEnded("stopped", stop.reason, stop.epochs_done, clock.elapsed())
        except Exception as exc:  # the UI must survive any failure; report, don't raise
            end = RunEnded("failed", failure_message(exc, config), epochs_done, clock.elapsed())
        _flush_warnings(caught, emit)
    emit(end)
    return end


def _run(
    config,
    should_stop,
    emit,
    data,
    device,
    clock,
    progress_interval,
    checkpoint_path,
    resume_state,
    take_edit,
):
    """Yields each EpochEnd after emitting it; raises _Stopped when asked to stop."""
    model, optimizer, scheduler = build_model(config, device)
    shuffle = torch.Generator().manual_seed(config.seed)
    done_before = 0
    if resume_state is not None:
        done_before = restore(resume_state, model, optimizer, scheduler, shuffle)
    # uint8 on the device: 4x less memory and traffic than float; scaled per batch.
    train_x = data.train_x.reshape(len(data.train_x), -1).to(device)
    train_y = data.train_y.to(device)
    # The test set is scaled once per run, not once per epoch: evaluation is then
    # a single matmul (10,000 x 784 floats is 31 MB).
    test_x = data.test_x.reshape(len(data.test_x), -1).to(device).float().div_(255.0)
    test_y = data.test_y.to(device)
    n, bs = len(train_x), config.batch_size
    steps = math.ceil(n / bs)
    # autograd's exact numbers, without autograd's bookkeeping, where that checks out.
    train_step, _ = make_train_step(
        model, optimizer, train_x[:bs].float().div_(255.0), train_y[:bs]
    )
    # Batch losses stay on the device until the next progress report reads them back.
    losses = torch.zeros(steps, device=device)
    # On the CPU reading a loss costs nothing, so a NaN stops the run at its own
    # batch; on a GPU that would synchronise every batch, so it is caught at the
    # next progress report (a tenth of a second later), still naming its batch.
    check_each_batch = device.type == "cpu"
    emit(
        RunStarted(
            device=describe_device(device),
            dataset=data.name,
            data_dir=data.source,
            n_train=n,
            n_test=len(test_x),
            epochs=config.epochs,
            steps_per_epoch=steps,
            batch_size=bs,
            first_epoch=done_before + 1,
        )
    )
    clock.start()
    for epoch in range(done_before + 1, config.epochs + 1):
        lr_used = optimizer.param_groups[0]["lr"]
        perm = torch.randperm(n, generator=shuffle).to(device)
        epoch_start = last_report = time.perf_counter()
        reported = 0
        model.train()
        for step in range(steps):
            stop = should_stop()
            if stop:
                raise _Stopped(epoch - 1, stop)
            idx = perm[step * bs : (step + 1) * bs]
            # index_select, not train_x[idx]: the same rows, 7 us instead of 26 us a
            # batch for uint8 images on the CPU (advanced indexing takes a slow path).
            x = torch.index_select(train_x, 0, idx).float().div_(255.0)  # as ToTensor does
            loss = train_step(x, torch.index_select(train_y, 0, idx))
            losses[step] = loss
            if check_each_batch and not math.isfinite(loss.item()):
                _check_finite([loss.item()], epoch, step, config)
            now = time.perf_counter()
            if now - last_report >= progress_interval or step == steps - 1:
                chunk = losses[reported : step + 1].tolist()
                _check_finite(chunk, epoch, reported, config)
                done = (step + 1) * bs if step < steps - 1 else n
                emit(
                    BatchProgress(
                        epoch=epoch,
                        step=step + 1,
                        steps=steps,
                        losses=tuple(chunk),
                        samples_per_s=done / max(now - epoch_start, 1e-9),
                        elapsed=clock.elapsed(),
                    )
                )
                reported, last_report = step + 1, now
        train_loss = losses.mean().item()
        scheduler.step()
        # After the step, as a user's script would edit StepLR between epochs; the
        # checkpoint below then holds the edited lr, step_size and gamma.
        edit = None
        if take_edit is not None and epoch < config.epochs:
            edit = _valid_edit(take_edit(), config, emit)
            if edit:
                apply_edit(optimizer, scheduler, edit)
        eval_start = time.perf_counter()
        acc = evaluate(model, test_x, test_y)
        now = time.perf_counter()
        event = EpochEnd(
            epoch=epoch,
            lr=lr_used,
            train_loss=train_loss,
            test_acc=acc,
            seconds=now - epoch_start,
            elapsed=clock.elapsed(),
            eval_seconds=now - eval_start,
            edit=edit,
        )
        emit(event)
        if checkpoint_path is not None:
            save_checkpoint(
                checkpoint_path,
                epoch=epoch,
                model=model,
                optimizer=optimizer,
                scheduler=scheduler,
                shuffle=shuffle,
            )
        yield event


def apply_edit(optimizer: torch.optim.Optimizer, scheduler, edit: ScheduleEdit) -> None:
    """Change StepLR's attributes and the optimizer's lr in place, as PyTorch allows."""
    if edit.step_size is not None:
        scheduler.step_size = edit.step_size
    if edit.gamma is not None:
        scheduler.gamma = edit.gamma
    if edit.lr is not None:
        for group in optimizer.param_groups:
            group["lr"] = edit.lr


def _valid_edit(edit: ScheduleEdit | None, config: TrainConfig, emit: Emit) -> ScheduleEdit | None:
    if not edit:
        return None
    try:
        config.with_values(**edit.as_dict()).validated()
    except FieldError as exc:
        emit(Notice(f"schedule edit ignored: {exc}", level="error"))
        return None
    return edit


@torch.no_grad()
def evaluate(model: nn.Module, test_x: torch.Tensor, test_y: torch.Tensor) -> float:
    """Test accuracy in percent, in a few large batches of already-scaled images."""
    model.eval()
    correct = torch.zeros((), dtype=torch.long, device=test_x.device)
    for start in range(0, len(test_x), EVAL_BATCH):
        logits = model(test_x[start : start + EVAL_BATCH])
        correct += (logits.argmax(dim=1) == test_y[start : start + EVAL_BATCH]).sum()
    return 100.0 * correct.item() / len(test_x)


def _check_finite(chunk: list[float], epoch: int, first_step: int, config: TrainConfig) -> None:
    for offset, value in enumerate(chunk):
        if not math.isfinite(value):
            raise RunFailure(
                f"loss became {value} at epoch {epoch}, batch {first_step + offset + 1}: "
                f"the run diverged; try a lower lr than {config.lr:g}"
            )


def failure_message(exc: BaseException, config: TrainConfig) -> str:
    """A message that says what went wrong and what to do, without a traceback."""
    if isinstance(exc, (RunFailure, datasets.DataError, FieldError, CheckpointError)):
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


class _Clock:
    """Seconds since the first batch (0 before it), so loading time is not counted."""

    def __init__(self) -> None:
        self._t0: float | None = None

    def start(self) -> None:
        self._t0 = time.perf_counter()

    def elapsed(self) -> float:
        return 0.0 if self._t0 is None else time.perf_counter() - self._t0


def synthetic_data(n_train: int = 512, n_test: int = 128, seed: int = 0) -> datasets.TensorData:
    """Small learnable fake digits (class k lights up row band k) for tests and benchmarks."""
    gen = torch.Generator().manual_seed(seed)

    def make(n: int) -> tuple[torch.Tensor, torch.Tensor]:
        y = torch.randint(0, 10, (n,), generator=gen)
        x = torch.randint(0, 60, (n, 28, 28), generator=gen, dtype=torch.uint8)
        for k in range(10):
            rows = slice(2 + 2 * k, 4 + 2 * k)
            x[y == k, rows, :] = 200
        return x, y

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return datasets.TensorData(train_x, train_y, test_x, test_y, "synthetic", str(Path("<memory>")))
