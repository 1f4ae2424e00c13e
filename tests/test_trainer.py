"""The trainer on small synthetic data: events, stopping, determinism, failures."""

from __future__ import annotations

import math

import pytest
import torch

from steplr_tui.run.trainer import describe_device, resolve_device, train
from steplr_tui.runfolder import BatchProgress, EpochEnd, Notice, RunEnded, RunStarted, Status
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.schedule import step_lrs
from tests.synthetic import synthetic_data


def run(config, data=None, stop=lambda: False, interval=0.0):
    events = []
    end = train(
        config,
        events.append,
        should_stop=stop,
        data=data or synthetic_data(),
        progress_interval=interval,
    )
    return end, events


CONFIG = TrainConfig(epochs=3, batch_size=50, step_size=1, gamma=0.5, lr=0.01, device="cpu")


def test_event_order_and_contents():
    end, events = run(CONFIG)
    kinds = [type(e) for e in events]
    assert kinds[0] is RunStarted and kinds[-1] is RunEnded
    assert end.status is Status.COMPLETED and events[-1] == end and end.epochs_done == 3
    started = events[0]
    assert started.n_train == 512 and started.steps_per_epoch == math.ceil(512 / 50)
    epochs = [e for e in events if isinstance(e, EpochEnd)]
    assert [e.epoch for e in epochs] == [1, 2, 3]
    # Every batch loss is reported exactly once, in order, before its epoch's end.
    for epoch in (1, 2, 3):
        progress = [e for e in events if isinstance(e, BatchProgress) and e.epoch == epoch]
        assert sum(len(p.losses) for p in progress) == started.steps_per_epoch
        assert progress[-1].step == started.steps_per_epoch
        assert events.index(progress[-1]) < events.index(epochs[epoch - 1])
        # The epoch's loss is the mean of its batch losses.
        losses = [x for p in progress for x in p.losses]
        assert epochs[epoch - 1].train_loss == pytest.approx(sum(losses) / len(losses), rel=1e-5)
    # Every number in every event is a plain Python value, not a tensor.
    for e in events:
        for value in vars(e).values():
            assert not isinstance(value, torch.Tensor)


def test_lr_used_per_epoch_is_the_preview():
    config = CONFIG.with_values(epochs=7, step_size=3, gamma=0.3)
    _, events = run(config)
    used = [e.lr for e in events if isinstance(e, EpochEnd)]
    assert used == step_lrs(config.lr, config.step_size, config.gamma, config.epochs)


def test_learns_the_synthetic_digits():
    _, events = run(CONFIG.with_values(epochs=2))
    assert [e for e in events if isinstance(e, EpochEnd)][-1].test_acc > 90.0


def test_same_seed_same_numbers_other_seed_other_numbers():
    def numbers(seed):
        _, events = run(CONFIG.with_values(seed=seed))
        return [(e.train_loss, e.test_acc) for e in events if isinstance(e, EpochEnd)]

    assert numbers(3) == numbers(3)
    assert numbers(3) != numbers(4)


def test_stop_takes_effect_at_the_next_batch():
    calls = {"n": 0}

    def stop_after_15():
        calls["n"] += 1
        return calls["n"] > 15

    end, events = run(CONFIG, stop=stop_after_15)
    assert end.status is Status.STOPPED
    # 15 batches ran (11 in epoch 1, 4 in epoch 2), not one more.
    trained = sum(len(e.losses) for e in events if isinstance(e, BatchProgress))
    assert trained == 15
    assert end.epochs_done == 1


def test_sgd_with_momentum_runs():
    end, _ = run(CONFIG.with_values(optimizer="sgd", momentum=0.9, lr=0.05, epochs=1))
    assert end.status is Status.COMPLETED


def test_divergence_fails_with_advice(monkeypatch):
    import steplr_tui.run.trainer as trainer_module

    real = trainer_module.make_train_step

    class NanAfter:
        calls = 0

        @staticmethod
        def make(model, optimizer, x, y):
            step, name = real(model, optimizer, x, y)

            def poisoned(x, y):
                NanAfter.calls += 1
                loss = step(x, y)
                return loss * float("nan") if NanAfter.calls == 17 else loss

            return poisoned, name

    monkeypatch.setattr(trainer_module, "make_train_step", NanAfter.make)
    end, events = run(CONFIG.with_values(epochs=3), interval=10.0)
    assert NanAfter.calls == 17  # stopped at that very batch, not one later
    assert end.status is Status.FAILED
    assert "lower lr" in end.message and "epoch 2, batch 6" in end.message
    # The epoch with the NaN never reports an end.
    assert [e.epoch for e in events if isinstance(e, EpochEnd)] == [1]


def test_invalid_config_fails_cleanly():
    end, events = run(CONFIG.with_values(gamma=5.0))
    assert end.status is Status.FAILED and "gamma" in end.message
    assert [type(e) for e in events] == [RunEnded]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_missing_cuda_fails_with_a_way_out():
    end, _ = run(CONFIG.with_values(device="cuda"))
    assert end.status is Status.FAILED
    assert "--device auto or cpu" in end.message


def test_unexpected_exception_becomes_a_failed_run():
    data = synthetic_data()
    broken = type(data)(data.train_x[:, :10], data.train_y, data.test_x, data.test_y, "bad", "x")
    end, _ = run(CONFIG, data=broken)
    assert end.status is Status.FAILED and end.message.startswith("training failed: ")
    assert "Traceback" not in end.message


def test_warnings_become_notices(monkeypatch):
    import warnings

    import steplr_tui.run.trainer as trainer_module

    real = trainer_module.build_model

    def noisy(config, device):
        warnings.warn("something torch-ish", UserWarning, stacklevel=1)
        return real(config, device)

    monkeypatch.setattr(trainer_module, "build_model", noisy)
    _, events = run(CONFIG.with_values(epochs=1))
    notices = [e for e in events if isinstance(e, Notice)]
    assert any("something torch-ish" in n.text for n in notices)


def test_out_of_memory_suggests_a_smaller_batch(monkeypatch):
    import steplr_tui.run.trainer as trainer_module

    def oom(*args, **kwargs):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")

    monkeypatch.setattr(trainer_module, "evaluate", oom)
    end, _ = run(CONFIG.with_values(batch_size=4096, epochs=1))
    assert end.status is Status.FAILED
    assert "out of memory with batch size 4096" in end.message
    assert "smaller --batch-size" in end.message


def test_device_words():
    threads = torch.get_num_threads()
    words = f"cpu ({threads} thread{'s' if threads != 1 else ''})"
    assert describe_device(resolve_device("cpu")) == words
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}


def test_the_heap_before_a_run_is_hidden_from_the_collector_during_it_only():
    import gc

    frozen_during: list[int] = []

    def emit(event):
        if isinstance(event, (RunStarted, EpochEnd)):
            frozen_during.append(gc.get_freeze_count())

    assert gc.get_freeze_count() == 0
    train(CONFIG, emit, data=synthetic_data())
    assert frozen_during and min(frozen_during) > 1000  # the interpreter's own objects at least
    assert gc.get_freeze_count() == 0
    # A failed run gives them back too.
    train(TrainConfig(device="cuda:nope"), lambda e: None, data=synthetic_data())
    assert gc.get_freeze_count() == 0


def test_threads_apply_during_the_run_and_are_given_back():
    before = torch.get_num_threads()
    seen = []

    def emit(event):
        if isinstance(event, EpochEnd):
            seen.append(torch.get_num_threads())

    train(CONFIG.with_values(threads=1, epochs=1), emit, data=synthetic_data())
    assert seen == [1]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_other_models_learn_and_report_their_name(model):
    end, events = run(CONFIG.with_values(model=model, epochs=2, lr=0.003))
    assert end.status is Status.COMPLETED
    started = next(e for e in events if isinstance(e, RunStarted))
    assert started.model == {"mlp": "MLP 784-256-10", "cnn": "LeNet-style CNN"}[model]
    assert [e for e in events if isinstance(e, EpochEnd)][-1].test_acc > 80.0
