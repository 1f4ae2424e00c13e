"""Reader and writer for the IDX format MNIST ships in, plain or gzipped (no torch).

The bundled sample is stored as gzipped IDX so the same four-file layout as MNIST
works for it, and so it can be read without torchvision.
"""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

_TYPE_UBYTE = 0x08


class IdxError(ValueError):
    """An IDX file that is truncated or not IDX at all."""


def read_idx(path: Path) -> tuple[tuple[int, ...], bytes]:
    """Return (shape, raw uint8 bytes) of an IDX file; raise IdxError naming the problem."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            blob = fh.read()
    except (OSError, EOFError) as exc:
        raise IdxError(f"{path} cannot be read: {exc}") from exc
    if len(blob) < 4:
        raise IdxError(f"{path} is not an IDX file (only {len(blob)} bytes)")
    zero, dtype, ndim = struct.unpack(">HBB", blob[:4])
    if zero != 0 or dtype != _TYPE_UBYTE or not 1 <= ndim <= 4:
        raise IdxError(f"{path} is not an unsigned-byte IDX file (bad header)")
    header = 4 + 4 * ndim
    shape = struct.unpack(">" + "I" * ndim, blob[4:header])
    count = 1
    for dim in shape:
        count *= dim
    if len(blob) - header != count:
        raise IdxError(
            f"{path} is truncated or padded: "
            f"header says {count} bytes, file has {len(blob) - header}"
        )
    return shape, blob[header:]


def write_idx(path: Path, shape: tuple[int, ...], data: bytes) -> None:
    """Write uint8 data as gzipped IDX (deterministic: no timestamp in the gzip header)."""
    header = struct.pack(">HBB", 0, _TYPE_UBYTE, len(shape)) + struct.pack(
        ">" + "I" * len(shape), *shape
    )
    with (
        open(path, "wb") as raw,
        gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=9) as fh,
    ):
        fh.write(header + data)
