"""Loading MNIST, the bundled sample, the fallback between them, and bad files."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from steplr_tui.run import datasets as dataset
from steplr_tui.run.datasets import DataError, load, load_mnist, load_sample
from steplr_tui.run.idx import IdxError, read_idx, write_idx
from steplr_tui.run.trainer import train
from steplr_tui.runfolder.params import TrainConfig
from steplr_tui.runfolder.paths import resolve_data_dir


def test_sample_is_balanced_mnist_shaped():
    data = load_sample()
    assert tuple(data.train_x.shape) == (10_000, 28, 28)
    assert tuple(data.test_x.shape) == (2_000, 28, 28)
    assert data.train_y.bincount().tolist() == [1000] * 10
    assert data.test_y.bincount().tolist() == [200] * 10
    assert data.train_x.dtype.is_floating_point is False


def test_sample_carries_its_attribution():
    text = (dataset.SAMPLE_DIR / "README.md").read_text()
    assert "CC BY-SA 3.0" in text and "LeCun" in text


def test_idx_roundtrip_and_damage(tmp_path: Path):
    path = tmp_path / "x.gz"
    write_idx(path, (2, 3), bytes(range(6)))
    assert read_idx(path) == ((2, 3), bytes(range(6)))
    with gzip.open(path, "rb") as fh:
        blob = fh.read()
    truncated = tmp_path / "t"
    truncated.write_bytes(blob[:-2])
    with pytest.raises(IdxError, match="truncated"):
        read_idx(truncated)
    junk = tmp_path / "j"
    junk.write_bytes(b"not an idx file at all")
    with pytest.raises(IdxError, match="bad header"):
        read_idx(junk)


def test_missing_mnist_without_download_names_the_path(tmp_path: Path):
    with pytest.raises(DataError) as info:
        load_mnist(tmp_path, download=False)
    assert str(tmp_path / "MNIST" / "raw") in str(info.value)
    assert "train-images-idx3-ubyte" in str(info.value)


def test_corrupt_mnist_is_a_clear_error(tmp_path: Path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in dataset.MNIST_FILES:
        (raw / name).write_bytes(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_mnist(tmp_path, download=False)


def _no_mnist(root: Path, download: bool):
    raise DataError(f"MNIST is not in {root} and could not be downloaded (offline)")


def test_auto_falls_back_to_the_sample_and_says_why(tmp_path: Path):
    data = load("auto", tmp_path, mnist_loader=_no_mnist)
    assert data.name == "MNIST sample"
    assert data.notice and "bundled MNIST sample" in data.notice and str(tmp_path) in data.notice


def test_explicit_mnist_never_falls_back(tmp_path: Path):
    with pytest.raises(DataError):
        load("mnist", tmp_path, mnist_loader=_no_mnist)


def test_run_with_missing_mnist_fails_with_path(tmp_path: Path):
    events = []
    config = TrainConfig(dataset="mnist", data_dir=str(tmp_path), download=False, epochs=1)
    end = train(config, events.append)
    assert end.status == "FAILED" and str(tmp_path) in end.message


def test_data_dir_resolution(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("STEPLR_TUI_DATA", str(tmp_path / "env"))
    assert resolve_data_dir(str(tmp_path / "flag")) == tmp_path / "flag"
    assert resolve_data_dir(None) == tmp_path / "env"
    monkeypatch.delenv("STEPLR_TUI_DATA")
    assert "steplr-tui" in str(resolve_data_dir(None))


def test_full_mnist_loads_as_tensors(mnist_root: Path):
    data = load_mnist(mnist_root, download=False)
    assert tuple(data.train_x.shape) == (60_000, 28, 28)
    assert tuple(data.test_x.shape) == (10_000, 28, 28)


@pytest.mark.parametrize(
    ("choice", "folder", "title"),
    [("fashion-mnist", "FashionMNIST", "Fashion-MNIST"), ("kmnist", "KMNIST", "KMNIST")],
)
def test_other_torchvision_datasets_load_from_their_folder(tmp_path: Path, choice, folder, title):
    raw = tmp_path / folder / "raw"
    raw.mkdir(parents=True)

    def write_raw(name: str, shape: tuple[int, ...], blob: bytes) -> None:
        # torchvision reads raw/ uncompressed; write_idx writes gzip.
        write_idx(tmp_path / "tmp.gz", shape, blob)
        (raw / name).write_bytes(gzip.decompress((tmp_path / "tmp.gz").read_bytes()))

    for prefix, n in (("train", 30), ("t10k", 10)):
        write_raw(
            f"{prefix}-images-idx3-ubyte", (n, 28, 28), bytes(i % 256 for i in range(n * 784))
        )
        write_raw(f"{prefix}-labels-idx1-ubyte", (n,), bytes(i % 10 for i in range(n)))
    data = load(choice, tmp_path, download=False)
    assert data.name == title
    assert tuple(data.train_x.shape) == (30, 28, 28) and tuple(data.test_x.shape) == (10, 28, 28)
    assert data.train_y.tolist() == [i % 10 for i in range(30)]


@pytest.mark.parametrize("choice", ["fashion-mnist", "kmnist"])
def test_other_datasets_offline_say_where_to_put_them(tmp_path: Path, choice):
    with pytest.raises(DataError) as info:
        load(choice, tmp_path, download=False)
    folder = dataset.SOURCES[choice].folder
    assert str(tmp_path / folder / "raw") in str(info.value)
    assert f"--dataset {choice}" in str(info.value)
