import numpy as np
import pytest
import torch

import regmix
from regmix.data import DATASETS, DatasetNotFound, ImageTensorDataset
from regmix.data.base import NUM_CLASSES, dataset_classes
from regmix.data.torchvision_sets import CIFAR, TinyImageNet
from regmix.registry import ConfigError


@pytest.mark.parametrize("name", ["mnist5k", "digits"])
def test_embedded_splits_are_fixed_disjoint_and_stratified(name):
    parts = {s: regmix.create_dataset(name, s) for s in ("train", "val", "test")}
    keys = {s: {ds.images[i].numpy().tobytes() for i in range(len(ds))} for s, ds in parts.items()}
    assert not keys["train"] & keys["test"] and not keys["val"] & keys["test"] and not keys["train"] & keys["val"]
    for ds in parts.values():
        counts = torch.bincount(ds.labels, minlength=10)
        assert counts.min() > 0 and counts.max() <= 1.1 * counts.min()  # every class, in proportion
        x, y = ds[0]
        assert x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
        assert 0 <= int(y) < ds.num_classes
    again = regmix.create_dataset(name, "test")
    assert torch.equal(again.images, parts["test"].images)


def test_mnist5k_is_the_packaged_real_data():
    sizes = {s: len(regmix.create_dataset("mnist5k", s)) for s in ("train", "val", "test")}
    assert sizes == {"train": 3500, "val": 500, "test": 1000}
    ds = regmix.create_dataset("mnist5k", "test")
    assert ds.image_size == (28, 28) and ds.in_channels == 1
    # real digits: mostly black background, some bright strokes
    x = torch.stack([ds[i][0] for i in range(100)])
    assert 0.05 < (x > 0.5).float().mean() < 0.3


def test_augmentation_keeps_shape_and_range_and_changes_images():
    ds = regmix.create_dataset("mnist5k", "train", augment=True)
    torch.manual_seed(0)
    views = torch.stack([ds[0][0] for _ in range(8)])
    assert views.shape == (8, 1, 28, 28) and views.min() >= 0 and views.max() <= 1
    assert any(not torch.equal(views[0], v) for v in views[1:])


def test_unknown_split_and_name_are_refused():
    with pytest.raises(ConfigError, match="data.split"):
        regmix.create_dataset("mnist5k", "dev")
    with pytest.raises(ConfigError, match="known: cifar10, cifar100, digits, mnist5k, tinyimagenet"):
        regmix.create_dataset("mnist", "train")


@pytest.mark.parametrize("name", ["cifar10", "cifar100", "tinyimagenet"])
def test_missing_dataset_says_where_it_looked(name, tmp_path):
    with pytest.raises(DatasetNotFound, match=str(tmp_path)):
        regmix.create_dataset(name, "train", data_dir=tmp_path)


def _write_fake_cifar(root, n=30):
    """A folder in torchvision's CIFAR-10 format (pickled numpy batches), of random pixels."""
    import pickle
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    batch = lambda: {"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8), "labels": [int(v) for v in rng.integers(0, 10, n)]}
    for i in range(1, 6):
        (folder / f"data_batch_{i}").write_bytes(pickle.dumps(batch()))
    (folder / "test_batch").write_bytes(pickle.dumps(batch()))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [str(i) for i in range(10)]}))


def test_cifar_reader_holds_out_validation_and_augments_train(tmp_path):
    _write_fake_cifar(tmp_path)
    # read by regmix's own reader: random pixels in the published layout pass (no checksum of the real files)
    train = regmix.create_dataset("cifar10", "train", tmp_path, val_size=20)
    val = regmix.create_dataset("cifar10", "val", tmp_path, val_size=20)
    test = regmix.create_dataset("cifar10", "test", tmp_path)
    assert (len(train), len(val), len(test)) == (130, 20, 30)
    assert train.augment and not val.augment and not test.augment
    assert train[0][0].shape == (3, 32, 32)


def test_cifar_reader_keeps_the_published_pixel_order_and_reads_cifar100(tmp_path):
    import pickle
    _write_fake_cifar(tmp_path)
    raw = pickle.loads((tmp_path / "cifar-10-batches-py" / "test_batch").read_bytes())
    test = regmix.create_dataset("cifar10", "test", tmp_path)
    # row i: 1024 red, 1024 green, 1024 blue values, each plane row-major (the published layout)
    assert torch.equal(test.images[3], torch.from_numpy(raw["data"][3].reshape(3, 32, 32)))
    assert test.labels.tolist() == raw["labels"]
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(1)
    for name, n in (("train", 40), ("test", 12)):
        (folder / name).write_bytes(pickle.dumps({"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                                  "fine_labels": [int(v) for v in rng.integers(0, 100, n)],
                                                  "coarse_labels": [0] * n}, protocol=5))
    train = regmix.create_dataset("cifar100", "train", tmp_path, val_size=10)
    assert len(train) == 30 and train.num_classes == 100
    assert len(regmix.create_dataset("cifar100", "test", tmp_path)) == 12


def test_cifar_reader_reads_python2_pickles_as_the_published_files_are(tmp_path):
    """The published batches are Python 2 pickles: keys and pixel bytes as py2 str (BINSTRING), numpy's
    rebuilder named numpy.core.multiarray."""
    import io
    import pickle
    import pickletools
    import struct

    class Py2Pickler(pickle._Pickler):
        dispatch = dict(pickle._Pickler.dispatch)

        def save_py2_str(self, obj):
            data = obj if isinstance(obj, bytes) else obj.encode("latin1")
            head = pickle.SHORT_BINSTRING + bytes([len(data)]) if len(data) < 256 else \
                pickle.BINSTRING + struct.pack("<i", len(data))
            self.write(head + data)
            self.memoize(obj)
        dispatch[bytes] = dispatch[str] = save_py2_str

    _write_fake_cifar(tmp_path)
    pixels = np.random.default_rng(2).integers(0, 256, (5, 3072), dtype=np.uint8)
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump({"batch_label": "testing batch 1 of 1", "labels": [0, 9, 3, 3, 1],
                                      "data": pixels, "filenames": ["a.png"] * 5})
    raw = buf.getvalue().replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    opcodes = {op.name for op, _, _ in pickletools.genops(raw)}
    assert b"cnumpy.core.multiarray\n_reconstruct" in raw and not opcodes & {"BINUNICODE", "SHORT_BINUNICODE"}
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(raw)
    test = regmix.create_dataset("cifar10", "test", tmp_path)
    assert test.labels.tolist() == [0, 9, 3, 3, 1]
    assert torch.equal(test.images, torch.from_numpy(pixels.reshape(5, 3, 32, 32)))


class _Payload:
    def __reduce__(self):
        import os
        return (os.system, ("touch EXPLOITED",))


def test_a_cifar_file_carrying_code_is_refused_without_running_it(tmp_path, monkeypatch):
    import pickle
    monkeypatch.chdir(tmp_path)
    _write_fake_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 1], "x": _Payload()}))
    with pytest.raises(ConfigError, match="data_batch_2 refused: it names .*system"):
        regmix.create_dataset("cifar10", "train", tmp_path, val_size=20)
    assert not (tmp_path / "EXPLOITED").exists()
    assert b"system" in path.read_bytes()  # the payload is real: a plain pickle load would run it


@pytest.mark.parametrize("entry, message", [
    ({"data": np.zeros((2, 3000), np.uint8), "labels": [0, 1]}, "'data' must be a uint8 array of shape"),
    ({"data": np.zeros((2, 3072), np.float32), "labels": [0, 1]}, "'data' must be a uint8 array of shape"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0]}, "2 images but 1 labels"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}, r"labels must lie in \[0, 9\]"),
    ({"data": np.zeros((2, 3072), np.uint8), "labels": ["a", "b"]}, "'labels' must be a list of integers"),
    ({"pixels": np.zeros((2, 3072), np.uint8)}, "expected a dict with 'data' and 'labels'"),
    (None, "test_batch is not a readable CIFAR batch"),
])
def test_a_malformed_cifar_file_is_refused_in_one_line_naming_it(tmp_path, entry, message):
    import pickle
    _write_fake_cifar(tmp_path)
    path = tmp_path / "cifar-10-batches-py" / "test_batch"
    path.write_bytes(pickle.dumps(entry)[:-3] if entry is None else pickle.dumps(entry))
    with pytest.raises(ConfigError, match=message) as err:
        regmix.create_dataset("cifar10", "test", tmp_path)
    assert "test_batch" in str(err.value) and "\n" not in str(err.value)
    (tmp_path / "cifar-10-batches-py" / "data_batch_4").unlink()
    with pytest.raises(DatasetNotFound, match="data_batch_4 is missing"):
        regmix.create_dataset("cifar10", "train", tmp_path)


def test_tinyimagenet_reads_the_standard_layout(tmp_path):
    from PIL import Image
    root = tmp_path / "tiny-imagenet-200"
    wnids = ["n01", "n02", "n03"]
    rng = np.random.default_rng(0)
    for w in wnids:
        (root / "train" / w / "images").mkdir(parents=True)
        for k in range(4):
            Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "train" / w / "images" / f"{w}_{k}.JPEG")
    (root / "val" / "images").mkdir(parents=True)
    lines = []
    for k, w in enumerate(wnids * 2):
        Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(root / "val" / "images" / f"val_{k}.JPEG")
        lines.append(f"val_{k}.JPEG\t{w}\t0\t0\t63\t63")
    (root / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")
    train = regmix.create_dataset("tinyimagenet", "train", tmp_path, val_size=3)
    val = regmix.create_dataset("tinyimagenet", "val", tmp_path, val_size=3)
    test = regmix.create_dataset("tinyimagenet", "test", tmp_path)
    assert (len(train), len(val), len(test)) == (9, 3, 6)
    x, y = test[4]
    assert x.shape == (3, 64, 64) and int(y) == 1 and 0 <= x.min() and x.max() <= 1


def test_every_registered_dataset_documents_itself():
    assert set(DATASETS.names()) == {"mnist5k", "digits", "cifar10", "cifar100", "tinyimagenet"}


def test_the_classes_table_is_each_datasets_own():
    """NUM_CLASSES answers without building a dataset; every built-in dataset has an entry, and builds with it."""
    assert set(NUM_CLASSES) == set(DATASETS.names())
    for name in ("mnist5k", "digits"):
        assert dataset_classes(name) == regmix.create_dataset(name, "test").num_classes
    for name in CIFAR:
        assert dataset_classes(name) == CIFAR[name]["num_classes"]
    assert dataset_classes("tinyimagenet") == TinyImageNet.num_classes
    with pytest.raises(ConfigError, match=r"^source\.dataset: unknown dataset 'cifar1' \(did you mean"):
        dataset_classes("cifar1", "source.dataset")



def test_a_dataset_registered_elsewhere_is_asked_its_classes(monkeypatch):
    """Not in NUM_CLASSES (a dataset registered by a user's own module): built once to ask."""
    def three_classes(split="train", data_dir=None, download=False, augment=None):
        return ImageTensorDataset(torch.zeros(6, 1, 4, 4, dtype=torch.uint8), [0, 1, 2] * 2,
                                  name="three", num_classes=3, mean=(0.5,), std=(0.5,))
    monkeypatch.setitem(DATASETS._entries, "three", three_classes)
    assert dataset_classes("three") == 3
