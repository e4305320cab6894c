"""CIFAR-10 from disk: finding the source, decoding it once, and caching the decoded arrays.

Where CIFAR-10 comes from, in order: the folder named by BNBOOK_DATA (or `root=`), which may hold the usual
image-folder layout (`train/<class>/*.jpg`, `test/<class>/*.jpg`, optionally under `cifar10/`), the archive
`cifar10-jpg.tar.gz` of that layout, or torchvision's `cifar-10-batches-py`; otherwise torchvision downloads
it into that folder. Images are decoded once and cached as uint8 arrays under BNBOOK_CACHE (default
~/.cache/bnbook), so later loads take about a second. The cached arrays are keyed by the source's identity
(path, sizes, modification times) and the decoder's version, so a changed or different source is decoded again.
Tensors, subsets and batches are `bnutils.data`'s.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import warnings
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .cache import cache_dir, try_write

DATA_ENV = "BNBOOK_DATA"
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
MEAN = (0.4914, 0.4822, 0.4465)  # CIFAR-10 training-set channel means and standard deviations
STD = (0.2470, 0.2435, 0.2616)
ARCHIVE = "cifar10-jpg.tar.gz"
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
CIFAR10_SIZES = (50000, 10000)  # training and test images of the real data set
DECODER_VERSION = 2  # part of the cached arrays' key: bump it whenever decoding changes, so old caches are rebuilt
HOW_TO_GET = (
    "CIFAR-10 was not found and could not be downloaded. Either connect to the internet (torchvision downloads "
    f"it, about 170 MB), or set the environment variable {DATA_ENV} to a folder holding CIFAR-10: torchvision's "
    f"'cifar-10-batches-py', the image-folder layout train/<class>/*.jpg + test/<class>/*.jpg, or {ARCHIVE}."
)



def data_root(root: str | os.PathLike | None = None) -> Path:
    """The CIFAR-10 folder: `root`, else $BNBOOK_DATA, else <cache>/data."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get(DATA_ENV, "").strip()
    return Path(env).expanduser() if env else cache_dir() / "data"


def _decode(blobs: list[tuple[str, bytes]], fix: str) -> np.ndarray:
    """Decode (name, bytes) images to (N, 32, 32, 3) uint8; a bad one raises a ValueError naming it and `fix`."""
    from PIL import Image

    def one(blob: tuple[str, bytes]) -> np.ndarray:
        name, b = blob
        try:
            with Image.open(io.BytesIO(b)) as im:
                x = np.asarray(im.convert("RGB"), dtype=np.uint8)
        except Exception as e:  # PIL raises OSError, SyntaxError, ValueError... depending on the format
            raise ValueError(f"cannot decode the image {name} ({type(e).__name__}: {e}); {fix}") from None
        if x.shape != (32, 32, 3):
            raise ValueError(f"the image {name} is {x.shape[1]}x{x.shape[0]}, not CIFAR-10's 32x32; {fix}")
        return x

    with ThreadPoolExecutor(max_workers=max(1, min(4, os.cpu_count() or 1))) as pool:
        return np.stack(list(pool.map(one, blobs, chunksize=512)))


def _label_of(parts: tuple[str, ...]) -> tuple[str, int] | None:
    """('...', 'train', 'cat', 'x.jpg') -> ('train', 3); None for anything else."""
    if len(parts) >= 3 and parts[-3] in ("train", "test") and parts[-2] in CLASSES:
        return parts[-3], CLASSES.index(parts[-2])
    return None


def _arrays_from_files(items: Iterator[tuple[tuple[str, ...], str, bytes]], fix: str) -> dict[str, np.ndarray]:
    """Arrays from (path parts, name for messages, bytes) of image files, labelled by their class folders."""
    blobs: dict[str, list[tuple[str, bytes]]] = {"train": [], "test": []}
    labels: dict[str, list[int]] = {"train": [], "test": []}
    for parts, name, data in items:
        lab = _label_of(parts)
        if lab:
            blobs[lab[0]].append((name, data))
            labels[lab[0]].append(lab[1])
    if not blobs["train"] or not blobs["test"]:
        raise FileNotFoundError("no train/<class>/*.jpg and test/<class>/*.jpg images found")
    out = {}
    for split in ("train", "test"):
        out[f"x_{split}"] = _decode(blobs[split], fix)
        out[f"y_{split}"] = np.asarray(labels[split], dtype=np.int64)
    return out


def _from_archive(path: Path) -> dict[str, np.ndarray]:
    fix = f"download {ARCHIVE} again, or delete {path}, or point {DATA_ENV} at another folder"

    def items():
        try:
            with tarfile.open(path, "r:*") as tar:
                for m in tar:
                    if m.isfile() and m.name.lower().endswith(IMAGE_SUFFIXES):
                        yield tuple(Path(m.name).parts), f"{m.name} in {path}", tar.extractfile(m).read()
        except (tarfile.TarError, EOFError, OSError, zlib.error) as e:  # corrupt, truncated, not a tar at all
            why = " ".join(str(e).split())  # tarfile lists each method it tried, one per line
            raise ValueError(f"cannot read the archive {path} ({type(e).__name__}: {why}): it is corrupt or truncated; "
                             f"{fix}") from None
    return _arrays_from_files(items(), fix)


def _from_folder(path: Path) -> dict[str, np.ndarray]:
    def items():
        for f in _image_files(path):
            yield tuple(f.parts), str(f), f.read_bytes()
    return _arrays_from_files(items(), f"delete or replace that file, or point {DATA_ENV} at another folder")


def _from_torchvision(root: Path) -> dict[str, np.ndarray]:
    import torchvision

    out = {}
    for split, train in (("train", True), ("test", False)):
        ds = torchvision.datasets.CIFAR10(str(root), train=train, download=False)
        out[f"x_{split}"] = np.asarray(ds.data, dtype=np.uint8)
        out[f"y_{split}"] = np.asarray(ds.targets, dtype=np.int64)
    return out


def _image_files(folder: Path) -> list[Path]:
    """The image files of an image-folder source, sorted (<split>/<class>/<file>)."""
    return [f for f in sorted(folder.glob("*/*/*")) if f.suffix.lower() in IMAGE_SUFFIXES]


def _find_source(root: Path) -> tuple[str, Path] | None:
    for folder in (root / "cifar10", root):
        if (folder / "train").is_dir() and (folder / "test").is_dir():
            return "folder", folder
    if (root / ARCHIVE).is_file():
        return "archive", root / ARCHIVE
    if (root / "cifar-10-batches-py").is_dir():
        return "torchvision", root
    return None


def _valid(arrays: dict[str, np.ndarray]) -> bool:
    keys = {"x_train", "y_train", "x_test", "y_test"}
    return (keys <= set(arrays) and arrays["x_train"].shape[1:] == (32, 32, 3)
            and len(arrays["x_train"]) == len(arrays["y_train"]) and len(arrays["x_test"]) == len(arrays["y_test"])
            and all(len(arrays[y]) and 0 <= int(arrays[y].min()) and int(arrays[y].max()) <= 9
                    for y in ("y_train", "y_test")))


def _identity(found: tuple[str, Path]) -> dict[str, Any]:
    """A cheap JSON-able identity of a source: its resolved path, and the sizes and modification times of its files
    (a changed file changes it; nothing is read or decoded)."""
    kind, path = found
    if kind == "archive":
        st = path.stat()
        return {"kind": kind, "path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}
    if kind == "folder":
        stats = [f.stat() for f in _image_files(path)]
        return {"kind": kind, "path": str(path.resolve()), "files": len(stats),
                "bytes": sum(st.st_size for st in stats), "mtime_ns": max((st.st_mtime_ns for st in stats), default=0)}
    folder = path / "cifar-10-batches-py"
    stats = [(f.name, f.stat()) for f in sorted(folder.iterdir()) if f.is_file()]
    return {"kind": kind, "path": str(folder.resolve()), "files": [[n, st.st_size, st.st_mtime_ns] for n, st in stats]}


def source_identity(root: str | os.PathLike | None = None) -> dict[str, Any]:
    """The identity of the CIFAR-10 source that load_cifar10 would use now (the key of its cached arrays);
    {'kind': 'torchvision', 'path': ..., 'present': False} when there is none yet (it would be downloaded)."""
    root = data_root(root)
    found = _find_source(root)
    if found is None:
        return {"kind": "torchvision", "path": str((root / "cifar-10-batches-py").resolve()), "present": False}
    return _identity(found)


_WARNED_SMALL: set[str] = set()


def _warn_if_small(arrays: dict[str, np.ndarray], identity: dict[str, Any]) -> None:
    """Warn once per source that holds fewer images than CIFAR-10 (a test copy served by mistake, a partial one)."""
    n_train, n_test = len(arrays["y_train"]), len(arrays["y_test"])
    key = json.dumps(identity, sort_keys=True)
    if (n_train < CIFAR10_SIZES[0] or n_test < CIFAR10_SIZES[1]) and key not in _WARNED_SMALL:
        _WARNED_SMALL.add(key)
        warnings.warn(f"the CIFAR-10 source {identity['path']} holds {n_train:,} training and {n_test:,} test images, "
                      f"CIFAR-10 has {CIFAR10_SIZES[0]:,} and {CIFAR10_SIZES[1]:,}: results on it are not CIFAR-10 "
                      f"results; point {DATA_ENV} at the full data set unless this is what you meant", stacklevel=4)


def _load_cached(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays cached at path; None when there are none, or (with a warning) when they are corrupted."""
    if not path.is_file():
        return None
    try:
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files}
        if _valid(arrays):
            return arrays
    except (OSError, ValueError, zipfile.BadZipFile, EOFError):
        pass
    warnings.warn(f"the cached CIFAR-10 arrays {path} are corrupted: rebuilding them")
    return None


def _read_source(found: tuple[str, Path]) -> dict[str, np.ndarray]:
    """Decode a source found by _find_source; a damaged one raises a ValueError naming it and what to do."""
    kind, path = found
    if kind == "folder":
        return _from_folder(path)
    if kind == "archive":
        return _from_archive(path)
    try:
        return _from_torchvision(path)
    except Exception as e:  # torchvision's checksum test fails on a damaged file without naming it
        raise ValueError(f"cannot read torchvision's CIFAR-10 in {path / 'cifar-10-batches-py'} ({e}); delete that "
                         f"folder (torchvision downloads it again) or point {DATA_ENV} at another folder") from None


def load_arrays(root: Path, download: bool) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """cifar10_arrays from the folder `root`, plus the identity of the source they came from."""
    found = _find_source(root)
    if found is None:
        import torchvision

        try:  # into root/cifar-10-batches-py, which is then the source
            torchvision.datasets.CIFAR10(str(root), train=True, download=download)
        except Exception as e:  # no network, a firewall, a half-written download: all end the same way
            raise FileNotFoundError(f"{HOW_TO_GET} (looked in {root}; the download failed with: {e})") from None
        found = ("torchvision", root)
    identity = _identity(found)
    digest = hashlib.sha256(json.dumps([identity, DECODER_VERSION], sort_keys=True).encode()).hexdigest()[:16]
    cached = cache_dir() / f"cifar10-{found[0]}-{digest}.npz"
    arrays = _load_cached(cached)
    if arrays is None:
        arrays = _read_source(found)
        try_write(cached, lambda f: np.savez(f, **arrays))
    _warn_if_small(arrays, identity)
    return arrays, identity


def cifar10_arrays(root: str | os.PathLike | None = None, download: bool = True) -> dict[str, np.ndarray]:
    """All of CIFAR-10 as uint8 arrays x_* (N, 32, 32, 3) and int64 labels y_*, decoded once and cached under
    a key of the source's identity and the decoder's version; a source smaller than CIFAR-10 is warned about."""
    return load_arrays(data_root(root), download)[0]
