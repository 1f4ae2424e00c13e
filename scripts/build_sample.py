"""Build the MNIST sample bundled in steplr_tui/sample_data/ from the full MNIST files.

Usage: python scripts/build_sample.py [MNIST_ROOT]   (default: ../shared/data)

Takes the first 1,000 training and the first 200 test images of each digit, in
file order, so the sample is balanced and the same every time it is built.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from steplr_tui.run.idx import read_idx, write_idx

PER_DIGIT = {"train": 1000, "t10k": 200}
OUT = Path(__file__).resolve().parents[1] / "steplr_tui" / "sample_data"


def build(root: Path) -> None:
    raw = root / "MNIST" / "raw"
    for split, per_digit in PER_DIGIT.items():
        (n, rows, cols), images = read_idx(raw / f"{split}-images-idx3-ubyte")
        (_,), labels = read_idx(raw / f"{split}-labels-idx1-ubyte")
        taken = {d: 0 for d in range(10)}
        keep = []
        for i, label in enumerate(labels):
            if taken[label] < per_digit:
                taken[label] += 1
                keep.append(i)
        size = rows * cols
        out_images = b"".join(images[i * size : (i + 1) * size] for i in keep)
        out_labels = bytes(labels[i] for i in keep)
        write_idx(OUT / f"{split}-images-idx3-ubyte.gz", (len(keep), rows, cols), out_images)
        write_idx(OUT / f"{split}-labels-idx1-ubyte.gz", (len(keep),), out_labels)
        print(f"{split}: {len(keep)} of {n} images, {per_digit} per digit")


if __name__ == "__main__":
    build(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/data"))
