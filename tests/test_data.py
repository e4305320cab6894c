import io
import json
import os
import re
import tarfile
import time
import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from bnutils import cifar10
from bnutils import data as D
from conftest import cifar_root

# the tiny test archives are smaller than CIFAR-10 on purpose; the test of that warning catches it explicitly
pytestmark = pytest.mark.filterwarnings("ignore:the CIFAR-10 source .* holds:UserWarning")


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
    _write_mini_archive(tmp_path / cifar10.ARCHIVE)
    a = cifar10.cifar10_arrays(tmp_path, download=False)
    assert a["x_train"].shape == (30, 32, 32, 3) and a["x_test"].shape == (30, 32, 32, 3)
    assert np.array_equal(a["x_train"][:, 0, 0, 0], 20 * a["y_train"])  # each image carries its class
    assert len(list(tmp_cache.glob("cifar10-archive-*.npz"))) == 1


def test_corrupted_array_cache_is_rebuilt(tmp_path, tmp_cache):
    _write_mini_archive(tmp_path / cifar10.ARCHIVE)
    cifar10.cifar10_arrays(tmp_path, download=False)
    (cached,) = tmp_cache.glob("cifar10-archive-*.npz")
    cached.write_bytes(b"not a zip file")
    with pytest.warns(UserWarning, match="corrupted"):
        a = cifar10.cifar10_arrays(tmp_path, download=False)
    assert a["x_train"].shape[0] == 30


def _count_decodes(monkeypatch) -> list:
    """Record each archive actually decoded (rather than served from the cached arrays)."""
    from bnutils import cifar10

    calls, decode = [], cifar10._from_archive
    monkeypatch.setattr(cifar10, "_from_archive", lambda path: calls.append(path) or decode(path))
    return calls


def test_cached_arrays_follow_the_source_not_its_kind(tmp_path, tmp_cache, monkeypatch):
    calls = _count_decodes(monkeypatch)
    (tmp_path / "tiny").mkdir()
    (tmp_path / "big").mkdir()
    _write_mini_archive(tmp_path / "tiny" / cifar10.ARCHIVE, per_class=1)
    _write_mini_archive(tmp_path / "big" / cifar10.ARCHIVE, per_class=2)
    assert len(cifar10.cifar10_arrays(tmp_path / "tiny", download=False)["x_train"]) == 10
    assert len(cifar10.cifar10_arrays(tmp_path / "big", download=False)["x_train"]) == 20  # not the tiny one's cache
    assert len(cifar10.cifar10_arrays(tmp_path / "tiny", download=False)["x_train"]) == 10 and len(calls) == 2
    _write_mini_archive(tmp_path / "tiny" / cifar10.ARCHIVE, per_class=3)  # same path, new content
    assert len(cifar10.cifar10_arrays(tmp_path / "tiny", download=False)["x_train"]) == 30 and len(calls) == 3
    st = (tmp_path / "tiny" / cifar10.ARCHIVE).stat()
    os.utime(tmp_path / "tiny" / cifar10.ARCHIVE, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))  # same size, touched
    cifar10.cifar10_arrays(tmp_path / "tiny", download=False)
    assert len(calls) == 4 and len(list(tmp_cache.glob("cifar10-archive-*.npz"))) == 4


def test_a_folder_source_is_rebuilt_when_an_image_changes(tmp_path, tmp_cache):
    for split in ("train", "test"):
        for c, name in enumerate(D.CLASSES):
            (tmp_path / split / name).mkdir(parents=True)
            Image.fromarray(np.full((32, 32, 3), 20 * c, np.uint8)).save(tmp_path / split / name / "0.png")
    assert cifar10.cifar10_arrays(tmp_path, download=False)["x_train"][0, 0, 0, 0] == 0
    Image.fromarray(np.full((32, 32, 3), 7, np.uint8)).save(tmp_path / "train" / "airplane" / "1.png")
    a = cifar10.cifar10_arrays(tmp_path, download=False)
    assert len(a["x_train"]) == 11 and sorted(a["x_train"][:2, 0, 0, 0].tolist()) == [0, 7]


def test_a_source_smaller_than_cifar10_is_warned_about_once(tmp_path, tmp_cache):
    _write_mini_archive(tmp_path / cifar10.ARCHIVE)
    with pytest.warns(UserWarning, match=r"holds 30 training and 30 test images, CIFAR-10 has 50,000 and 10,000"):
        cifar10.cifar10_arrays(tmp_path, download=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        D.load_cifar10(10, 10, root=tmp_path)
    assert not [w for w in caught if "holds" in str(w.message)]


def test_unwritable_cache_still_returns_the_arrays(tmp_path, monkeypatch):
    (tmp_path / "afile").write_text("a file, so no folder can be made under it")
    monkeypatch.setenv("BNBOOK_CACHE", str(tmp_path / "afile" / "cache"))
    _write_mini_archive(tmp_path / cifar10.ARCHIVE)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        a = cifar10.cifar10_arrays(tmp_path, download=False)
    assert a["x_train"].shape == (30, 32, 32, 3)
    (message,) = [str(w.message) for w in caught if "cannot write" in str(w.message)]  # one warning, not two
    assert str(tmp_path / "afile" / "cache") in message and "BNBOOK_CACHE" in message


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def test_bad_archives_raise_errors_naming_the_file(tmp_path, tmp_cache):
    archive = tmp_path / cifar10.ARCHIVE
    archive.write_bytes(b"this is not a tar.gz archive" * 100)
    with pytest.raises(ValueError, match=rf"{re.escape(str(archive))}.*corrupt.*download"):
        cifar10.cifar10_arrays(tmp_path, download=False)
    _write_mini_archive(archive, per_class=20)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])  # truncated
    with pytest.raises(ValueError, match=rf"{re.escape(str(archive))}.*truncated"):
        cifar10.cifar10_arrays(tmp_path, download=False)
    _write_mini_archive(archive)
    with tarfile.open(archive, "w:gz") as tar:
        for split in ("train", "test"):
            buf = io.BytesIO()
            Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(buf, "JPEG")
            _add(tar, f"cifar10/{split}/cat/0.jpg", buf.getvalue())
        _add(tar, "cifar10/train/dog/broken.jpg", b"not a jpeg")
    with pytest.raises(ValueError, match=rf"cifar10/train/dog/broken\.jpg in {re.escape(str(archive))}.*delete"):
        cifar10.cifar10_arrays(tmp_path, download=False)
    assert not list(tmp_cache.glob("cifar10-*.npz"))  # nothing half-decoded was cached


def test_bad_image_in_a_folder_raises_an_error_naming_it(tmp_path, tmp_cache):
    for split in ("train", "test"):
        (tmp_path / split / "cat").mkdir(parents=True)
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / split / "cat" / "0.png")
    (tmp_path / "test" / "cat" / "1.jpg").write_bytes(b"\xff\xd8 half a jpeg")
    with pytest.raises(ValueError, match=rf"{re.escape(str(tmp_path / 'test' / 'cat' / '1.jpg'))}.*{cifar10.DATA_ENV}"):
        cifar10.cifar10_arrays(tmp_path, download=False)


def test_source_identity_without_a_source_decodes_nothing(tmp_path, tmp_cache):
    ident = cifar10.source_identity(tmp_path / "nothing")
    assert ident["present"] is False and ident["kind"] == "torchvision" and not (tmp_path / "nothing").exists()
    _write_mini_archive(tmp_path / cifar10.ARCHIVE)
    ident = cifar10.source_identity(tmp_path)
    assert ident["kind"] == "archive" and ident["path"] == str((tmp_path / cifar10.ARCHIVE).resolve())
    assert ident["bytes"] == (tmp_path / cifar10.ARCHIVE).stat().st_size and not list(tmp_cache.glob("*.npz"))


def test_cache_key_tells_loads_apart(tmp_path, tmp_cache):
    _write_mini_archive(tmp_path / cifar10.ARCHIVE)
    key = lambda **kw: D.load_cifar10(**{"n_train": 20, "n_test": 10, "seed": 0, "root": tmp_path, **kw}).cache_key()
    base = key()
    assert base == key() and json.loads(json.dumps(base)) == base
    assert base["source"] == cifar10.source_identity(tmp_path) and base["name"] == "cifar10"
    assert key(seed=1) != base and key(n_train=10) != base and key(n_test=20) != base
    teacher = D.linear_teacher(100, 5, n_test=10, seed=0)
    assert teacher.cache_key() == {"name": "linear_teacher", "task": "regression", "n": 100, "dim": 5, "n_test": 10,
                                   "seed": 0}
    assert D.linear_teacher(100, 5, n_test=10, seed=1).cache_key() != teacher.cache_key()


def test_cache_key_of_an_ad_hoc_dataset_hashes_its_content():
    x, y = torch.randn(20, 3), torch.arange(20) % 2

    def make(x):
        return D.Dataset("toy", D.Split(x, y), D.Split(x[:5].clone(), y[:5]))

    d = make(x.clone())
    key = d.cache_key()
    assert d.origin is None and key == make(x.clone()).cache_key() and key == d.cache_key()
    changed = x.clone()
    changed[3, 1] += 1e-3
    assert make(changed).cache_key() != key
    d.train.x[0, 0] = 5.0  # in place: the memoized hash must notice
    assert d.cache_key() != key
    assert make(x.double()).cache_key() != key  # same values, another dtype


def test_missing_data_offline_fails_fast_with_instructions(tmp_path, tmp_cache, monkeypatch):
    monkeypatch.setenv(cifar10.DATA_ENV, str(tmp_path / "empty"))
    t0 = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=cifar10.DATA_ENV) as e:
        cifar10.cifar10_arrays(download=False)
    assert "torchvision downloads it" in str(e.value) and time.perf_counter() - t0 < 30


@pytest.mark.skipif(cifar_root() is None, reason="no offline CIFAR-10 copy (../shared/data or $BNBOOK_DATA)")
def test_real_cifar10_offline():
    d = D.load_cifar10(1000, 500, seed=1, root=cifar_root())
    assert d.train.x.shape == (1000, 3, 32, 32) and d.test.x.shape == (500, 3, 32, 32)
    assert torch.bincount(d.train.y).tolist() == [100] * 10 and d.classes == D.CLASSES
    assert len(set(d.test.y[:50].tolist())) >= 8  # shuffled: the first images are not all of one class
    assert abs(float(d.train.x.mean())) < 0.1 and 0.9 < float(d.train.x.std()) < 1.1
    full = cifar10.cifar10_arrays(cifar_root())
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
    """Every augmented image is its original zero-padded by 4, cropped at one of the 9 x 9 offsets and flipped or not;
    over a batch both flips and many offsets happen (so pixels shift in and zeros appear), and the generator repeats."""
    n = 64
    x = torch.arange(n * 3 * 32 * 32, dtype=torch.float).view(n, 3, 32, 32) + 1  # every pixel distinct, none 0
    out = D.augment(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    found = []
    for i in range(n):
        crops = padded[i].unfold(1, 32, 1).unfold(2, 32, 1)  # (3, 9, 9, 32, 32): every offset
        hits = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (False, True)
                if torch.equal(out[i], crops[:, dy, dx].flip(-1) if flip else crops[:, dy, dx])]
        assert len(hits) == 1, f"image {i} is not one crop-and-flip of its original"
        found.append(hits[0])
    flips = [f for *_, f in found]
    offsets = {(dy, dx) for dy, dx, _ in found}
    assert 16 < sum(flips) < 48 and len(offsets) > 20  # about half flipped; offsets spread over the 81
    assert any(o != (4, 4) for o in offsets) and bool((out == 0).any())  # real shifts: padding enters the image
    assert torch.equal(out, D.augment(x, torch.Generator().manual_seed(0)))


def test_augmentation_happens_in_training_only(tiny_images):
    """train(augment=True) feeds the model augmented training batches and evaluates on the test images as they
    are; augment=False trains on the images as they are."""
    from bnutils.train import train

    data = tiny_images(32, 16)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 32 * 32, 10))
    seen: dict[bool, list] = {True: [], False: []}
    model[0].register_forward_pre_hook(lambda m, i: seen[m.training].append(i[0].detach().clone()))
    is_original = lambda img: any(torch.equal(img, o) for o in data.train.x)
    train(model, data, steps=4, lr=0.01, batch_size=8, augment=True, eval_every=4, progress=False)
    trained = torch.cat(seen[True])
    assert len(trained) == 32 and sum(not is_original(im) for im in trained) >= 28  # (4, 4) unflipped: 1 in 162
    assert torch.equal(torch.cat(seen[False]), data.test.x)  # evaluation: no augmentation
    seen[True].clear()
    train(model, data, steps=4, lr=0.01, batch_size=8, augment=False, progress=False)
    assert all(is_original(im) for im in torch.cat(seen[True]))


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
