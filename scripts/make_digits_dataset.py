"""Build ``resources/digits.npz`` from the UCI 8x8 handwritten-digits CSV.

The source is the copy of the UCI "Optical Recognition of Handwritten Digits"
test set (1,797 images) that scikit-learn ships as
``sklearn/datasets/data/digits.csv.gz``: one image per row, 64 pixel values in
0..16 followed by the label. scikit-learn is *not* imported (and is not a
dependency of PruneScope); this script only reads that file. Either pass its
path with ``--csv`` or have a scikit-learn somewhere on ``sys.path``, e.g.::

    .venv/bin/pip install --no-deps --target /tmp/sklearn_pkg scikit-learn
    PYTHONPATH=/tmp/sklearn_pkg .venv/bin/python scripts/make_digits_dataset.py

The output holds:

* ``images``    uint8 ``(1797, 8, 8)``, values 0..16
* ``labels``    int64 ``(1797,)``, values 0..9
* ``train_idx`` int64 ``(1437,)`` and ``test_idx`` int64 ``(360,)``: a fixed,
  stratified split (each class gives 35..37 test images, in proportion to
  its size), drawn with ``SEED``.

The ``.npz`` is written with fixed zip timestamps, so rerunning the script
reproduces it byte for byte.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "resources" / "digits.npz"
SEED = 0
N_IMAGES = 1797
N_TEST = 360
N_CLASSES = 10


def find_sklearn_csv() -> Path:
    """Locate ``digits.csv.gz`` inside an installed scikit-learn without importing it."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(
            "scikit-learn not found; pass --csv PATH/TO/digits.csv.gz, or e.g.\n"
            "  pip install --no-deps --target /tmp/sklearn_pkg scikit-learn\n"
            "  PYTHONPATH=/tmp/sklearn_pkg python scripts/make_digits_dataset.py"
        )
    for location in spec.submodule_search_locations:
        candidate = Path(location) / "datasets" / "data" / "digits.csv.gz"
        if candidate.is_file():
            return candidate
    raise SystemExit("this scikit-learn has no datasets/data/digits.csv.gz; pass --csv")


def read_csv(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(images uint8 (N, 8, 8), labels int64 (N,))`` from the gzipped CSV."""
    with gzip.open(path, "rt", encoding="ascii") as handle:
        table = np.loadtxt(handle, delimiter=",", dtype=np.int64)
    if table.shape != (N_IMAGES, 65):
        raise SystemExit(f"unexpected CSV shape {table.shape}, wanted ({N_IMAGES}, 65)")
    pixels, labels = table[:, :64], table[:, 64]
    if pixels.min() < 0 or pixels.max() > 16 or labels.min() < 0 or labels.max() > 9:
        raise SystemExit("CSV values out of range (pixels 0..16, labels 0..9)")
    return pixels.reshape(-1, 8, 8).astype(np.uint8), labels.astype(np.int64)


def stratified_split(labels: np.ndarray, n_test: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Split indices into sorted ``(train_idx, test_idx)`` with ``n_test`` test items.

    Each class gives a share of the test set proportional to its size
    (largest-remainder rounding, so the total is exactly ``n_test``); which
    items of a class go to the test set is drawn with ``seed``.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * n_test / labels.size
    quota = np.floor(exact).astype(np.int64)
    short = n_test - int(quota.sum())
    # Largest fractional parts first; ties go to the lower class (stable sort).
    order = np.argsort(-(exact - quota), kind="stable")
    quota[order[:short]] += 1
    test_parts = []
    for cls, k in zip(classes, quota, strict=True):
        members = np.flatnonzero(labels == cls)
        test_parts.append(rng.permutation(members)[:k])
    test_idx = np.sort(np.concatenate(test_parts)).astype(np.int64)
    train_idx = np.setdiff1d(np.arange(labels.size), test_idx).astype(np.int64)
    return train_idx, test_idx


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write a deflated ``.npz`` readable by ``numpy.load``, with fixed zip timestamps."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(array), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            archive.writestr(info, buffer.getvalue(), compresslevel=9)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; returns the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--csv", type=Path, help="path to digits.csv.gz (default: from sklearn)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz path")
    args = parser.parse_args(argv)

    csv_path = args.csv if args.csv is not None else find_sklearn_csv()
    images, labels = read_csv(csv_path)
    train_idx, test_idx = stratified_split(labels, N_TEST, SEED)
    assert train_idx.size + test_idx.size == N_IMAGES
    write_npz(
        args.out,
        {"images": images, "labels": labels, "train_idx": train_idx, "test_idx": test_idx},
    )
    per_class = np.bincount(labels[test_idx], minlength=N_CLASSES).tolist()
    print(f"read {csv_path}")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes)")
    print(f"{images.shape[0]} images, {train_idx.size} train / {test_idx.size} test")
    print(f"test images per class: {per_class}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
