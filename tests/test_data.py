import io
import tarfile
import time

import numpy as np
import pytest
import torch
from PIL import Image

from bnutils import data as D
from conftest import cifar_root


def _write_mini_archive(path, per_class=3):
    """A tiny archive in the shared layout: class c's images are filled with the value 20 * c."""
    with tarfile.open(path, "w:gz") as tar:
        for split in ("train", "test"):
            for c, name in enumerate(D.CLASSES):
                for i in range(per_class):
                    buf = io.BytesIO()
                    Image.fromarray(np.full((32, 32, 3), 20 * c, np.uint8)).save(buf, "PNG")
                    info = tarfile.TarInfo(f"cifar10/{split}/{name}/{i:04d}.png")
                    info.size = len(buf.getvalue())
                    tar.addfile(info, io.BytesIO(buf.getvalue()))


def test_archive_labels_follow_class_folders(tmp_path, tmp_cache):
    _write_mini_archive(tmp_path / D.ARCHIVE)
    a = D.cifar10_arrays(tmp_path, download=False)
    assert a["x_train"].shape == (30, 32, 32, 3) and a["x_test"].shape == (30, 32, 32, 3)
    assert np.array_equal(a["x_train"][:, 0, 0, 0], 20 * a["y_train"])  # each image carries its class
    assert (tmp_cache / "cifar10-archive.npz").is_file()


def test_corrupted_array_cache_is_rebuilt(tmp_path, tmp_cache):
    _write_mini_archive(tmp_path / D.ARCHIVE)
    D.cifar10_arrays(tmp_path, download=False)
    (tmp_cache / "cifar10-archive.npz").write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="corrupted"):
        a = D.cifar10_arrays(tmp_path, download=False)
    assert a["x_train"].shape[0] == 30


def test_missing_data_offline_fails_fast_with_instructions(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv(D.DATA_ENV, str(tmp_path / "empty"))
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=D.DATA_ENV) as e:
        D.cifar10_arrays(download=False)
    assert "torchvision downloads it" in str(e.value) and time.perf_counter() - t0 < 30


@pytest.mark.skipif(cifar_root() is None, reason="no offline CIFAR-10 copy (../shared/data or $BNBOOK_DATA)")
def test_real_cifar10_offline():
    d = D.load_cifar10(1000, 500, seed=1, root=cifar_root())
    assert d.train.x.shape == (1000, 3, 32, 32) and d.test.x.shape == (500, 3, 32, 32)
    assert torch.bincount(d.train.y).tolist() == [100] * 10 and d.classes == D.CLASSES
    assert len(set(d.test.y[:50].tolist())) >= 8  # shuffled: the first images are not all of one class
    assert abs(float(d.train.x.mean())) < 0.1 and 0.9 < float(d.train.x.std()) < 1.1
    full = D.cifar10_arrays(cifar_root())
    assert full["x_train"].shape == (50000, 32, 32, 3) and full["x_test"].shape == (10000, 32, 32, 3)
    assert np.bincount(full["y_test"]).tolist() == [1000] * 10
    # the labels are right: per-class mean colours differ as CIFAR-10's do (ships and planes are bluest)
    blue = [full["x_train"][full["y_train"] == c][..., 2].mean() - full["x_train"][full["y_train"] == c][..., 0].mean()
            for c in range(10)]
    assert np.argsort(blue)[-2:].tolist() in ([0, 8], [8, 0])


def test_subsets_are_balanced_and_deterministic():
    labels = np.repeat(np.arange(10), 50)
    a, b, c = (D.subset_indices(labels, 95, s) for s in (0, 0, 1))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert sorted(np.bincount(labels[a]).tolist()) == [9] * 5 + [10] * 5


def test_batches_cover_each_epoch_once():
    split = D.Split(torch.arange(20).float().view(20, 1), torch.arange(20))
    it = D.batches(split, 5, seed=0)
    seen = torch.cat([next(it)[1] for _ in range(4)])
    assert sorted(seen.tolist()) == list(range(20))
    full_x, _ = next(D.batches(split, None))
    assert full_x.shape[0] == 20


def test_augment_crops_and_flips():
    x = torch.arange(2 * 3 * 32 * 32, dtype=torch.float).view(2, 3, 32, 32)
    out = D.augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape and not torch.equal(out, x)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(out, D.augment(x, g))


def test_linear_teacher():
    d = D.linear_teacher(n=1000, dim=10, seed=0)
    a = torch.linalg.lstsq(d.train.x, d.train.y).solution.T
    assert torch.allclose(d.test.x @ a.T, d.test.y, atol=1e-3) and d.task == "regression"


@pytest.mark.parametrize("call,match", [
    (lambda: D.load_cifar10(n_train=0), r"n_train=0"),
    (lambda: D.load_cifar10(seed=-2), r"seed=-2"),
    (lambda: D.linear_teacher(dim=0), r"dim=0"),
    (lambda: next(D.batches(D.Split(torch.zeros(4, 1), torch.zeros(4)), 0)), r"batch_size=0"),
])
def test_bad_data_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
