"""CIFAR-10/100 files in their published "python version" layout, read without torchvision.

Each batch file is a pickle of a dict: 'data' a uint8 array (n, 3072) (the red, green, then blue
32x32 plane of each image, row-major) and 'labels' (CIFAR-10) or 'fine_labels' (CIFAR-100), a list
of n integers. A pickle can carry code, so the files are read by a restricted unpickler that builds
numpy arrays, lists, dicts and strings only: any other global a file names is refused before anything
in it runs. The contents are then checked (shape, dtype, labels), one line naming the file.
"""
from __future__ import annotations

import codecs
import io
import pickle
from pathlib import Path

import numpy as np

from ..registry import ConfigError
from .base import DatasetNotFound

# (module, name) a CIFAR pickle may name: numpy's array and dtype rebuilders (numpy 1 and 2 spellings),
# and the bytes decoder protocol 2 pickles of Python 3 use for the raw pixel bytes
ALLOWED = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
}
FILES = {  # dataset -> (train files, test files, label key)
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], "labels"),
    "cifar100": (["train"], ["test"], "fine_labels"),
}
PIXELS = 3 * 32 * 32


def _numpy_global(module: str, name: str):
    core = getattr(np, "_core", None) or np.core
    if name == "_reconstruct":
        return core.multiarray._reconstruct
    if name == "_frombuffer":
        return core.numeric._frombuffer
    return getattr(np, name)


class RestrictedUnpickler(pickle.Unpickler):
    """Builds only what a CIFAR batch holds (ALLOWED); any other global is refused, naming the file."""

    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")  # the published files are Python 2 pickles
        self.path = path

    def find_class(self, module, name):
        if (module, name) not in ALLOWED:
            raise ConfigError(f"data.data_dir: {self.path} refused: it names {module}.{name}, which a CIFAR "
                              f"batch (numpy arrays, lists, strings) never needs; it was not run")
        if module == "_codecs":
            return codecs.encode
        return _numpy_global(module, name)


def load_batch(path, label_key: str, num_classes: int):
    """(images uint8 (n, 3, 32, 32), labels int64 (n,)) of one CIFAR batch file, checked."""
    path = Path(path)
    if not path.is_file():
        raise DatasetNotFound(f"data.data_dir: {path} is missing (a CIFAR batch file)")
    try:
        entry = RestrictedUnpickler(io.BytesIO(path.read_bytes()), path).load()
    except ConfigError:
        raise
    except Exception as err:  # truncated or not a pickle at all
        raise ConfigError(f"data.data_dir: {path} is not a readable CIFAR batch "
                          f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else 'no detail'})") from None
    if not isinstance(entry, dict) or "data" not in entry or label_key not in entry:
        keys = ", ".join(map(str, entry)) if isinstance(entry, dict) else type(entry).__name__
        raise ConfigError(f"data.data_dir: {path} is not a CIFAR batch: expected a dict with 'data' and "
                          f"'{label_key}', got {keys}")
    data, labels = entry["data"], entry[label_key]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != PIXELS:
        shape = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ConfigError(f"data.data_dir: {path}: 'data' must be a uint8 array of shape (n, {PIXELS}), got {shape}")
    if not isinstance(labels, (list, np.ndarray)) or \
            not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in labels):
        raise ConfigError(f"data.data_dir: {path}: '{label_key}' must be a list of integers")
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    if len(labels) != len(data):
        raise ConfigError(f"data.data_dir: {path}: {len(data)} images but {len(labels)} labels")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise ConfigError(f"data.data_dir: {path}: labels must lie in [0, {num_classes - 1}], got "
                          f"{int(labels.min())}..{int(labels.max())}")
    return data.reshape(-1, 3, 32, 32), labels


def load_split(folder, name: str, train: bool, num_classes: int):
    """(images uint8 (n, 3, 32, 32), labels int64) of the train or test files of CIFAR `name`."""
    train_files, test_files, label_key = FILES[name]
    parts = [load_batch(Path(folder) / f, label_key, num_classes) for f in (train_files if train else test_files)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

