import pickle

import pytest
import torch

import regmix
from regmix.checkpoint import load_checkpoint
from regmix.files import atomic_save
from regmix.models import load_weights
from regmix.registry import ConfigError


class Exploit:
    def __reduce__(self):
        import os
        return (os.system, ("touch EXPLOITED",))


def test_a_pickle_carrying_code_is_refused_without_running_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"format": 1, "payload": Exploit()}, path)
    with pytest.raises(ConfigError, match="refused"):
        load_checkpoint(path)
    assert not (tmp_path / "EXPLOITED").exists()
    # the same file does run code under a plain pickle load: the test's payload is real
    with open(path, "rb") as f:
        assert b"system" in f.read()


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "x.pt"
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(ConfigError, match="not a regmix checkpoint"):
        load_checkpoint(path)
    path.write_bytes(b"garbage")
    with pytest.raises(ConfigError, match="refused"):
        load_checkpoint(path)


def test_atomic_save_leaves_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "last.pt"
    atomic_save({"format": 1, "v": torch.ones(2)}, path)

    class Unsaveable:
        def __reduce__(self):
            raise OSError("No space left on device")

    with pytest.raises(OSError):
        atomic_save({"format": 1, "v": Unsaveable()}, path)
    assert torch.equal(load_checkpoint(path)["v"], torch.ones(2))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def test_weights_of_another_architecture_are_refused():
    small = regmix.create_model("small_cnn", 10, 1, width=8)
    other_classes = regmix.create_model("small_cnn", 100, 1, width=8)
    with pytest.raises(ConfigError, match="another architecture or number of classes"):
        load_weights(small, other_classes.state_dict())
    with pytest.raises(ConfigError, match="another architecture"):
        load_weights(small, regmix.create_model("resnet18", 10, 1).state_dict())
