"""Datasets as whole uint8 tensors in memory: MNIST, Fashion-MNIST and KMNIST via
torchvision, or the bundled MNIST sample.

Training indexes these tensors directly, so there is no per-sample PIL image or
ToTensor call anywhere. Where full MNIST cannot be had and the user did not insist
on it, the bundled sample is used and the reason is reported, never hidden.
"""

from __future__ import annotations

import contextlib
import io
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from steplr_tui.run.idx import IdxError, read_idx

SAMPLE_DIR = Path(__file__).resolve().parents[1] / "sample_data"
MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# torchvision's downloader sets no timeout; a firewalled cluster would hang forever.
DOWNLOAD_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Source:
    """A torchvision dataset of 28x28 grey images in ten classes, as --dataset names it."""

    choice: str  # the --dataset value
    title: str  # as shown to the user
    folder: str  # torchvision's class name, which is also its folder under the data dir

    @property
    def hint(self) -> str:
        return (
            f"To use {self.title}, run once where there is internet "
            f"(steplr-tui --headless --dataset {self.choice} --epochs 1 --data-dir DIR), or copy "
            f"the four {self.title} files into DIR/{self.folder}/raw/, then start with "
            "--data-dir DIR or STEPLR_TUI_DATA=DIR."
        )


SOURCES = {
    s.choice: s
    for s in (
        Source("mnist", "MNIST", "MNIST"),
        Source("fashion-mnist", "Fashion-MNIST", "FashionMNIST"),
        Source("kmnist", "KMNIST", "KMNIST"),
    )
}
GET_MNIST_HINT = SOURCES["mnist"].hint


class DataError(RuntimeError):
    """Data that cannot be loaded; the message names the path and what to do."""


@dataclass(frozen=True)
class TensorData:
    """Images as uint8 [N, 28, 28] and labels as int64 [N], for training and test."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    name: str
    source: str
    notice: str | None = None


def load_mnist(root: Path, download: bool = True) -> TensorData:
    """Full MNIST from `root` (torchvision's layout), downloading missing files if allowed."""
    return load_torchvision("mnist", root, download)


def load_torchvision(choice: str, root: Path, download: bool = True) -> TensorData:
    """MNIST, Fashion-MNIST or KMNIST from `root` in torchvision's layout, downloading
    missing files if allowed; all three share MNIST's file names and format."""
    from torchvision import datasets  # deferred: torchvision's import is slow

    source = SOURCES[choice]
    raw = root / source.folder / "raw"
    missing = [f for f in MNIST_FILES if not (raw / f).is_file()]
    if missing and not download:
        raise DataError(
            f"{source.title} files missing in {raw}: {', '.join(missing)}. {source.hint}"
        )
    cls = getattr(datasets, source.folder)
    try:
        with _quiet_download():
            train = cls(str(root), train=True, download=download)
            test = cls(str(root), train=False, download=download)
    except Exception as exc:
        why = download_reason(exc) if missing else _first_line(exc)
        if missing:
            raise DataError(
                f"{source.title} is not in {raw} and could not be downloaded ({why}). {source.hint}"
            ) from exc
        # Present but unreadable: truncated or corrupt files fail inside torchvision's parser.
        raise DataError(
            f"{source.title} in {raw} cannot be read ({why}): the files may be truncated or "
            f"corrupt. Delete them so they are downloaded again, or copy fresh ones. "
            f"{source.hint}"
        ) from exc
    data = TensorData(
        train.data, train.targets, test.data, test.targets, source.title, str(root.resolve())
    )
    _check_shapes(data, raw)
    return data


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def download_reason(exc: BaseException) -> str:
    """Why a download failed, in words: torchvision's message lists each mirror's error
    on the lines after an empty first line ('Error downloading x.gz:')."""
    text = str(exc)
    chain: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and len(chain) < 5:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    text += " " + " ".join(str(e) for e in chain[1:])
    low = text.lower()
    if any(isinstance(e, (TimeoutError, socket.timeout)) for e in chain) or "timed out" in low:
        return f"no answer within {DOWNLOAD_TIMEOUT_S:.0f} s (timed out)"
    if "name resolution" in low or "name or service not known" in low or "nodename nor" in low:
        return "no network: the download host's name could not be looked up"
    if "refused" in low:
        return "the connection was refused"
    if "network is unreachable" in low or "no route to host" in low:
        return "no network: the host is unreachable"
    if "403" in low or "404" in low or "http error" in low:
        detail = next((ln.strip() for ln in text.splitlines() if "HTTP" in ln), "")
        return f"the server refused the file ({detail or 'an HTTP error'})"
    if "md5" in low or "integrity" in low:
        return "the downloaded file was damaged (checksum mismatch)"
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("Tried")]
    rest = [ln for ln in lines if not ln.lower().startswith("error downloading")]
    return (rest[0] if rest else lines[0] if lines else type(exc).__name__)[:160]


def load_sample(notice: str | None = None) -> TensorData:
    """The 10,000/2,000-image MNIST sample that ships inside the package."""
    try:
        parts = [_read_idx_tensor(SAMPLE_DIR / f"{name}.gz") for name in MNIST_FILES]
    except IdxError as exc:
        raise DataError(
            f"the bundled MNIST sample is damaged ({exc}); reinstall steplr-tui"
        ) from exc
    train_x, train_y, test_x, test_y = parts
    data = TensorData(
        train_x, train_y.long(), test_x, test_y.long(), "MNIST sample", str(SAMPLE_DIR), notice
    )
    _check_shapes(data, SAMPLE_DIR)
    return data


def load(
    dataset: str,
    data_dir: Path,
    download: bool = True,
    mnist_loader: Callable[[Path, bool], TensorData] = load_mnist,
) -> TensorData:
    """Load what `dataset` asks for: 'mnist', 'fashion-mnist' or 'kmnist' (or fail),
    'sample', or 'auto' (MNIST, else the sample)."""
    if dataset == "sample":
        return load_sample()
    if dataset == "mnist":
        return mnist_loader(data_dir, download)
    if dataset in SOURCES:
        return load_torchvision(dataset, data_dir, download)
    try:
        return mnist_loader(data_dir, download)
    except DataError as exc:
        return load_sample(
            notice=(
                "Training on the bundled MNIST sample (10,000 train / 2,000 test images), "
                f"not full MNIST: {exc}"
            )
        )


def _read_idx_tensor(path: Path) -> torch.Tensor:
    shape, blob = read_idx(path)
    return torch.frombuffer(bytearray(blob), dtype=torch.uint8).reshape(shape)


def _check_shapes(data: TensorData, where: Path) -> None:
    ok = (
        data.train_x.dim() == 3
        and tuple(data.train_x.shape[1:]) == (28, 28)
        and tuple(data.test_x.shape[1:]) == (28, 28)
        and len(data.train_x) == len(data.train_y) > 0
        and len(data.test_x) == len(data.test_y) > 0
    )
    if not ok:
        raise DataError(f"the data in {where} is not 28x28 images with matching labels")


@contextlib.contextmanager
def _quiet_download():
    """Bound the download's wait and keep torchvision's progress prints off the screen."""
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
            yield
    finally:
        socket.setdefaulttimeout(previous)
