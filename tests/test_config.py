import pytest

from regmix.config import load_config
from regmix.registry import ConfigError


def write(path, text):
    path.write_text(text)
    return path


def test_yaml_base_and_overrides_layer(tmp_path):
    write(tmp_path / "base.yaml", "train: {epochs: 7, seed: 3}\nmethod: {name: pgk, options: {lam: 2.0}}\n")
    child = write(tmp_path / "child.yaml", "base: base.yaml\ntrain: {epochs: 9}\nthreat: {eps: 8/255}\n")
    config = load_config(child, ["method.options.lam=1.5", "optim.lr=0.05"])
    assert config.train.epochs == 9 and config.train.seed == 3
    assert config.method.name == "pgk" and config.method.options == {"lam": 1.5}
    assert config.optim.lr == 0.05
    assert config.training_threat().eps == pytest.approx(8 / 255)


@pytest.mark.parametrize("override, message", [
    ("trian.epochs=3", "trian: unknown config key.*did you mean 'train'"),
    ("train.epocs=3", "train.epocs: unknown config key.*did you mean 'epochs'"),
    ("train.epochs=three", "train.epochs: expected an integer"),
    ("train.epochs=0", r"train.epochs: must be an integer in \[1, 100000\]"),
    ("threat.eps=-0.1", "threat.eps: must be in"),
    ("threat.eps=300", "threat.eps: must be in"),
    ("optim.lr=-1", "optim.lr"),
    ("method.name=regmx", "did you mean 'regmix'"),
    ("model.name=resnet", "known: preact_resnet18, resnet18, small_cnn, wrn34_10"),
    ("data.name=cifar", "did you mean"),
    ("method.options.gamma=-1", "method.options.gamma: must be a number >= 0"),
    ("schedule.name=linear", "schedule.name: must be one of"),
    ("train.amp=fp8", "train.amp"),
    ("eval.monitor_attack=autoattack", "eval.monitor_attack: must be one of pgd, apgd"),
    ("eval.monitor_every=0", r"eval.monitor_every: must be an integer in \[1, 100000\]"),
])
def test_bad_values_are_refused_with_the_field_named(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(data={}, overrides=[override])


def test_selection_on_the_strong_attack_needs_it_at_every_validation_epoch():
    with pytest.raises(ConfigError, match="eval.select: must be pgd when eval.monitor_every is above 1"):
        load_config(data={}, overrides=["eval.select=strong", "eval.monitor_every=2"])
    assert load_config(data={}, overrides=["eval.monitor_every=2"]).eval.monitor_every == 2


def test_malformed_yaml_names_the_line(tmp_path):
    bad = write(tmp_path / "bad.yaml", "train:\n  epochs: 3\n  seed: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML at line"):
        load_config(bad)


def test_a_key_given_twice_is_refused_naming_the_line(tmp_path):
    twice = write(tmp_path / "twice.yaml", "data: {name: digits}\ntrain:\n  epochs: 3\n  epochs: 30\n")
    with pytest.raises(ConfigError, match=r"twice.yaml is not valid YAML at line 4, column 3: key 'epochs' appears twice"):
        load_config(twice)


def test_a_suite_with_a_section_given_twice_is_refused(tmp_path):
    from pathlib import Path

    from regmix.study import load_suite
    text = (Path(__file__).resolve().parent.parent / "configs/study/mnist5k.yaml").read_text()
    twice = write(tmp_path / "twice.yaml", text + "\nseeds: [0]\n")
    with pytest.raises(ConfigError, match="^suite: .*twice.yaml is not valid YAML at line .*key 'seeds' appears twice"):
        load_suite(str(twice))


def test_yaml_is_read_safely(tmp_path):
    hostile = write(tmp_path / "hostile.yaml", "name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(hostile)


def test_missing_file():
    with pytest.raises(ConfigError, match="no such file"):
        load_config("does/not/exist.yaml")


def test_every_shipped_recipe_loads(pytestconfig):
    root = pytestconfig.rootpath / "configs"
    # configs/study/ holds study specs (regmix study), not training recipes
    recipes = sorted(p for p in root.rglob("*.yaml") if p.name != "base.yaml" and not p.name.startswith("_")
                     and "study" not in p.relative_to(root).parts[:-1])
    assert len(recipes) >= 4
    for path in recipes:
        load_config(path)


def test_loggers_are_checked_and_method_defaults_resolved():
    from regmix.methods import METHODS
    with pytest.raises(ConfigError, match=r"^train.loggers: must be a list of tensorboard, mlflow"):
        load_config(data={"train": {"loggers": ["wandb"]}})
    config = load_config(data={"method": {"name": "regmix", "options": {"alpha": 2}}})
    options = config.resolved().method.options
    assert options["alpha"] == 2 and options["beta"] == METHODS.get("regmix").defaults["beta"]
    assert config.method.options == {"alpha": 2}  # resolved() is a copy
