"""Training scripts in the shapes users have, with steplr-tui added as its README says:
the PyTorch MNIST example (Adadelta, StepLR(step_size=1, gamma=0.7), train()/test()
functions, accuracy in percent), and Optuna's PyTorch example as an objective of the
user's own study (accuracy as a fraction). Tiny synthetic data; the class-based DDP
trainer is in test_tracking_api.py, the LightningModule with OneCycleLR in
test_lightning.py."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
import torch
import torch.nn.functional as F
from torch import nn
from torch.optim.lr_scheduler import StepLR

import steplr_tui
from steplr_tui.runfolder import METRICS_FILE, STATUS_FILE
from tests.synthetic import synthetic_data

DATA = synthetic_data(n_train=128, n_test=32)


def loader(train: bool, batch_size: int):
    x = DATA.train_x if train else DATA.test_x
    y = DATA.train_y if train else DATA.test_y
    dataset = torch.utils.data.TensorDataset(x.float().div(255.0).unsqueeze(1), y)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=train)


# ---- the PyTorch MNIST example's shape ---------------------------------------------


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, 2)
        self.fc1 = nn.Linear(4 * 13 * 13, 10)

    def forward(self, x):
        x = F.relu(self.conv1(x))
        return F.log_softmax(self.fc1(torch.flatten(x, 1)), dim=1)


def train(args, model, device, train_loader, optimizer, epoch, run):
    model.train()
    for data, target in train_loader:
        if run.should_stop():  # added
            break
        data, target = data.to(device), target.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(model(data), target)
        loss.backward()
        optimizer.step()
        run.log_batch(loss)  # added


def evaluate(model, device, test_loader):  # the example calls it test()
    model.eval()
    correct = 0
    with torch.no_grad():
        for data, target in test_loader:
            pred = model(data.to(device)).argmax(dim=1, keepdim=True)
            correct += pred.eq(target.view_as(pred)).sum().item()
    return 100.0 * correct / len(test_loader.dataset)


def mnist_example(runs: Path, epochs: int = 3) -> Path:
    class Args:
        batch_size, lr, gamma = 32, 1.0, 0.7

    args, device = Args(), torch.device("cpu")
    torch.manual_seed(1)
    model = Net().to(device)
    optimizer = torch.optim.Adadelta(model.parameters(), lr=args.lr)
    scheduler = StepLR(optimizer, step_size=1, gamma=args.gamma)
    run = steplr_tui.track(  # added
        optimizer, scheduler, runs_dir=runs, epochs=epochs, batch_size=args.batch_size
    )
    for epoch in range(1, epochs + 1):
        train(args, model, device, loader(True, args.batch_size), optimizer, epoch, run)
        acc = evaluate(model, device, loader(False, 1000))
        scheduler.step()
        run.end_epoch(test_acc=acc)  # added
    run.finish()  # added
    return run.path


def test_the_pytorch_mnist_example_shape_records_what_it_used(tmp_path: Path):
    path = mnist_example(tmp_path)
    status = json.loads((path / STATUS_FILE).read_text())
    assert status["status"] == "COMPLETED"
    lines = [json.loads(x) for x in (path / METRICS_FILE).read_text().splitlines()]
    assert [m["lr"] for m in lines] == [1.0, 0.7, 0.7 * 0.7]  # torch's own floats
    assert all(0.0 <= m["test_acc"] <= 100.0 for m in lines)
    config = json.loads((path / "config.json").read_text())["config"]
    assert config["optimizer"] == "adadelta" and config["batch_size"] == 32
    assert config["scheduler_params"] == {"class": "StepLR", "step_size": 1, "gamma": 0.7}
    assert "momentum" not in config and "model" not in config  # never a built-in default


# ---- Optuna's PyTorch example: the user's own study ---------------------------------


def objective_for(runs: Path):
    def objective(trial: optuna.Trial) -> float:
        hidden = trial.suggest_int("n_units", 4, 16)
        lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
        model = nn.Sequential(
            nn.Flatten(), nn.Linear(28 * 28, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        run = steplr_tui.track(optimizer, None, runs_dir=runs, epochs=2, trial=trial)
        accuracy = 0.0
        for _epoch in range(2):
            for data, target in loader(True, 32):
                loss = F.cross_entropy(model(data), target)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                run.log_batch(loss)
            with torch.no_grad():
                data, target = next(iter(loader(False, 32)))
                accuracy = (model(data).argmax(1) == target).float().mean().item()
            run.end_epoch(test_acc=accuracy)  # a fraction, as Optuna's example has it
        run.finish()
        return accuracy

    return objective


def test_optunas_example_keeps_its_own_study_and_units(tmp_path: Path):
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(0))
    study.optimize(objective_for(tmp_path), n_trials=2)
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    for t in study.trials:
        folder = Path(t.user_attrs["run_folder"])
        lines = [json.loads(x) for x in (folder / METRICS_FILE).read_text().splitlines()]
        # The study keeps the script's fractions; the record (every view) shows percent.
        assert [round(v * 100, 9) for v in t.intermediate_values.values()] == [
            round(m["test_acc"], 9) for m in lines
        ]
        assert 0.0 <= t.value <= 1.0 and lines[-1]["test_acc"] == t.value * 100.0
