import pytest
import torch

import regmix
from regmix.config import load_config

torch.set_num_threads(2)


def tiny_config(tmp_path, method="standard", **sections):
    """A config that trains in seconds: small_cnn (width 8) on scikit-learn's 8x8 digits."""
    data = {
        "name": method, "out_dir": str(tmp_path),
        "data": {"name": "digits", "batch_size": 64},
        "model": {"name": "small_cnn", "options": {"width": 8}},
        "threat": {"eps": 0.1, "step": 0.025, "steps": 5},
        "method": {"name": method},
        "optim": {"name": "adam", "lr": 0.003, "weight_decay": 0.0},
        "schedule": {"name": "constant"},
        "eval": {"steps": 5},
        "train": {"epochs": 2, "progress": False},
    }
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    return load_config(data=data)


@pytest.fixture(scope="session")
def mnist_batch():
    ds = regmix.create_dataset("mnist5k", "test")
    x = torch.stack([ds[i][0] for i in range(64)])
    y = torch.stack([ds[i][1] for i in range(64)])
    return x, y


@pytest.fixture(scope="session")
def trained_mnist_model():
    """small_cnn trained normally on mnist5k for two epochs (about 5 s): accurate and not robust."""
    torch.manual_seed(0)
    ds = regmix.create_dataset("mnist5k", "train")
    model = regmix.create_model("small_cnn", 10, 1, mean=ds.mean, std=ds.std, width=16)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    loader = torch.utils.data.DataLoader(ds, batch_size=128, shuffle=True)
    for _ in range(2):
        for x, y in loader:
            loss = torch.nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()
