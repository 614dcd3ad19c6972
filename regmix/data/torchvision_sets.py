"""CIFAR-10/100 (the published pickle files, read by cifar_files; torchvision only to download them) and
Tiny ImageNet (the standard folder layout)."""
from __future__ import annotations

import os
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .base import DATASETS, NUM_CLASSES, DatasetNotFound, ImageTensorDataset, holdout_split, random_crop_flip
from .cifar_files import load_split

CIFAR_VAL_SIZE = 1000
TINY_VAL_SIZE = 5000

CIFAR = {
    "cifar10": dict(cls="CIFAR10", folder="cifar-10-batches-py", num_classes=NUM_CLASSES["cifar10"],
                    mean=(0.4914, 0.4822, 0.4465), std=(0.2471, 0.2435, 0.2616)),
    "cifar100": dict(cls="CIFAR100", folder="cifar-100-python", num_classes=NUM_CLASSES["cifar100"],
                     mean=(0.5071, 0.4865, 0.4409), std=(0.2673, 0.2564, 0.2762)),
}


def _root(data_dir) -> Path:
    return Path(data_dir if data_dir is not None else os.environ.get("REGMIX_DATA", "data")).expanduser()


def _cifar(name, split, data_dir, download, augment, val_size):
    spec = CIFAR[name]
    root = _root(data_dir)
    if not (root / spec["folder"]).exists():
        if not download:
            raise DatasetNotFound(
                f"data.data_dir: {name} not found: looked for {root / spec['folder']}; point --data-dir "
                f"(or data.data_dir) at the folder that holds it, or add --set data.download=true when online")
        import torchvision  # the download only (it checks the archive's md5); the files are read below
        try:
            getattr(torchvision.datasets, spec["cls"])(str(root), train=split != "test", download=True)
        except RuntimeError as err:
            raise DatasetNotFound(f"data.data_dir: {name} under {root} could not be downloaded ({err})") from None
    data, labels = load_split(root / spec["folder"], name, split != "test", spec["num_classes"])
    images = torch.from_numpy(data).contiguous()
    if split != "test":
        index = holdout_split(len(labels), val_size, split)
        images, labels = images[index], labels[index]
    if augment is None:
        augment = split == "train"
    return ImageTensorDataset(images, labels, name=name, num_classes=spec["num_classes"],
                              mean=spec["mean"], std=spec["std"], augment=augment)


@DATASETS.register("cifar10")
def cifar10(split="train", data_dir=None, download=False, augment=None, val_size=CIFAR_VAL_SIZE):
    return _cifar("cifar10", split, data_dir, download, augment, val_size)


@DATASETS.register("cifar100")
def cifar100(split="train", data_dir=None, download=False, augment=None, val_size=CIFAR_VAL_SIZE):
    return _cifar("cifar100", split, data_dir, download, augment, val_size)


class TinyImageNet(Dataset):
    """Tiny ImageNet from `tiny-imagenet-200/` (train/<wnid>/images/*.JPEG, val/val_annotations.txt).

    The official validation set is our test split (the official test set has no labels); our val split
    is held out of the official training set.
    """
    name = "tinyimagenet"
    num_classes = NUM_CLASSES["tinyimagenet"]
    in_channels = 3
    image_size = (64, 64)
    mean = (0.4802, 0.4481, 0.3975)
    std = (0.2770, 0.2691, 0.2821)

    def __init__(self, root: Path, split: str, augment: bool, val_size: int):
        self.augment = augment
        wnids = sorted(p.name for p in (root / "train").iterdir() if p.is_dir())
        label_of = {w: i for i, w in enumerate(wnids)}
        if split == "test":
            lines = (root / "val" / "val_annotations.txt").read_text().splitlines()
            items = [(root / "val" / "images" / ln.split("\t")[0], label_of[ln.split("\t")[1]])
                     for ln in lines if ln.strip()]
        else:
            items = [(path, label_of[w]) for w in wnids
                     for path in sorted((root / "train" / w / "images").glob("*.JPEG"))]
            items = [items[i] for i in holdout_split(len(items), val_size, split)]
        if not items:
            raise DatasetNotFound(f"data.data_dir: no images found for tinyimagenet/{split} under {root}")
        self.paths = [p for p, _ in items]
        self.labels = torch.tensor([y for _, y in items], dtype=torch.long)

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        from PIL import Image  # Tiny ImageNet's JPEG files only; keeps PIL out of every other import
        from torchvision.transforms.functional import pil_to_tensor  # (the same)
        with Image.open(self.paths[i]) as img:
            x = pil_to_tensor(img.convert("RGB")).float() / 255
        if self.augment:
            x = random_crop_flip(x, 4, True)
        return x, self.labels[i]


@DATASETS.register("tinyimagenet")
def tinyimagenet(split="train", data_dir=None, download=False, augment=None, val_size=TINY_VAL_SIZE):
    root = _root(data_dir)
    if (root / "tiny-imagenet-200").is_dir():
        root = root / "tiny-imagenet-200"
    if not (root / "train").is_dir() or not (root / "val" / "val_annotations.txt").is_file():
        raise DatasetNotFound(
            f"data.data_dir: tinyimagenet not found: looked for {root}/train/<wnid>/images and "
            f"{root}/val/val_annotations.txt; download tiny-imagenet-200.zip from the CS231n site, "
            f"unzip it and pass its folder as --data-dir")
    if augment is None:
        augment = split == "train"
    return TinyImageNet(root, split, augment, val_size)
