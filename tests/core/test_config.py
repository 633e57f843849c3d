"""Config overrides, files, round trips and the errors for bad keys and values."""

import json

import pytest

from selfsup.config import (
    Config,
    apply_overrides,
    config_from_dict,
    flatten,
    load_config_file,
    resume_config,
)
from selfsup.errors import SelfsupError


def test_dotted_overrides_are_typed():
    cfg = apply_overrides(
        Config(),
        {
            "optim.lr": "0.3",
            "train.epochs": "5",
            "train.amp": "false",
            "eval.protocols": "knn,linear",
            "train.time_budget": "none",
            "method.temperature": 0.5,
        },
    )
    assert cfg.optim.lr == 0.3 and cfg.train.epochs == 5 and cfg.train.amp is False
    assert cfg.eval.protocols == ("knn", "linear") and cfg.train.time_budget is None
    assert cfg.method.params == {"temperature": 0.5}
    assert config_from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"optim.lrr": 1}, "unknown config key 'optim.lrr'"),
        ({"nothing.lr": 1}, "unknown config key 'nothing.lr'"),
        ({"train.epochs": "many"}, "expects int"),
        ({"train.amp": "maybe"}, "expects true or false"),
        ({"train.epochs": 0}, "train.epochs must be at least 1"),
        ({"optim.name": "adam"}, "optim.name must be"),
        ({"train.checkpoint_every": 0}, "train.checkpoint_every .* must be at least 1"),
        ({"train.log_every": 0}, "train.log_every .* must be at least 1"),
        ({"train.eval_every": -1}, "train.eval_every .* must be at least 0"),
        ({"optim.weight_decay": -1e-4}, "optim.weight_decay must be a number >= 0"),
        ({"optim.weight_decay": "nan"}, "optim.weight_decay must be a number >= 0"),
        ({"optim.momentum": 1.0}, r"optim.momentum must be in \[0, 1\)"),
        ({"optim.momentum": -0.1}, r"optim.momentum must be in \[0, 1\)"),
        ({"optim.final_lr_fraction": 1.5}, "optim.final_lr_fraction"),
        ({"optim.final_lr_fraction": -0.1}, "optim.final_lr_fraction"),
        ({"optim.lars_eta": 0}, "optim.lars_eta must be a positive number"),
        ({"optim.lr": "inf"}, "optim.lr must be a positive number"),
        ({"eval.knn_t": "nan"}, "eval.knn_t must be a positive number"),
        ({"eval.protocols": "knn,lineer"}, "unknown eval.protocols lineer; choose from"),
        ({"train.time_budget": "inf"}, "train.time_budget"),
        ({"train.seed": -1}, "train.seed must be"),
        ({"train.batch_size": 1}, "train.batch_size must be at least 2"),
        ({"data.image_size": 2}, "data.image_size must be at least 4"),
    ],
)
def test_bad_keys_and_values_are_named(overrides, message):
    with pytest.raises(SelfsupError, match=message):
        apply_overrides(Config(), overrides)


def test_edge_values_are_accepted():
    cfg = apply_overrides(
        Config(),
        {
            "train.eval_every": 0,
            "train.checkpoint_every": 1,
            "train.log_every": 1,
            "optim.weight_decay": 0,
            "optim.momentum": 0,
            "optim.final_lr_fraction": 1,
            "eval.protocols": "",
        },
    )
    assert cfg.train.eval_every == 0 and cfg.eval.protocols == ()


def test_config_files_json_and_toml(tmp_path):
    (tmp_path / "c.json").write_text(
        json.dumps({"train": {"epochs": 3}, "method": {"temperature": 0.1}})
    )
    (tmp_path / "c.toml").write_text("[optim]\nlr = 0.2\n[data]\nsource = 'digits'\n")
    assert load_config_file(tmp_path / "c.json") == {"train.epochs": 3, "method.temperature": 0.1}
    assert load_config_file(tmp_path / "c.toml") == {"optim.lr": 0.2, "data.source": "digits"}
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(SelfsupError, match="could not be parsed"):
        load_config_file(tmp_path / "bad.json")
    with pytest.raises(SelfsupError, match="does not exist"):
        load_config_file(tmp_path / "missing.json")


def _saved() -> Config:
    """A finished 6-epoch run's config, as read back from its config.json."""
    cfg = apply_overrides(Config(), {"train.epochs": 6, "method.proj_dim": 64, "optim.lr": 0.4})
    return config_from_dict(json.loads(json.dumps({"config": cfg.to_dict()}))["config"])


def test_resume_applies_the_safe_overrides():
    saved = _saved()
    cfg = resume_config(
        saved,
        {
            "train.epochs": 8,
            "train.time_budget": "2.5",
            "train.device": "cpu",
            "train.progress": False,
            "train.eval_every": 0,
            "eval.knn_k": "20",
            "eval.protocols": "knn",
        },
    )
    assert cfg.train.epochs == 8 and cfg.train.time_budget == 2.5 and cfg.train.device == "cpu"
    assert cfg.train.progress is False and cfg.train.eval_every == 0
    assert cfg.eval.knn_k == 20 and cfg.eval.protocols == ("knn",)
    assert cfg.method.params == {"proj_dim": 64} and cfg.optim == saved.optim
    assert saved.train.epochs == 6 and saved.eval.knn_k == 200  # the saved config is untouched
    assert resume_config(saved, {}) == saved


def test_resume_accepts_overrides_equal_to_the_saved_values():
    saved = _saved()
    same = {
        "optim.lr": "0.4",  # a string from --set, equal once typed
        "train.batch_size": 256,
        "data.source": "digits",
        "method.name": "simclr",
        "method.proj_dim": 64,
        "method.temperature": 0.2,  # never set in the run, but equal to the method's default
        "method.params": {"proj_dim": 64},
        "train.amp": "true",
    }
    assert resume_config(saved, same) == saved


def test_resume_refuses_other_changes_naming_each():
    saved = _saved()
    overrides = {
        "optim.lr": 0.3,
        "train.batch_size": 512,
        "method.temperature": 0.5,
        "train.epochs": 10,  # safe, but the others are not
    }
    with pytest.raises(SelfsupError) as err:
        resume_config(saved, overrides)
    message = str(err.value)
    for part in (
        "optim.lr (saved 0.4, given 0.3)",
        "train.batch_size (saved 256, given 512)",
        "method.temperature (saved 0.2, given 0.5)",
        "another --out",
    ):
        assert part in message
    assert "train.epochs" not in message.split(" when resuming")[0]
    with pytest.raises(SelfsupError, match=r"train.epochs \(saved 6, given 4: only more epochs\)"):
        resume_config(saved, {"train.epochs": 4})
    with pytest.raises(SelfsupError, match=r"unknown config key 'train\.epoch'"):
        resume_config(saved, {"train.epoch": 8})
    with pytest.raises(SelfsupError, match=r"train\.log_every .* must be at least 1"):
        resume_config(saved, {"train.log_every": 0})


def test_method_parameters_are_typed_like_the_core_sections():
    """`--set method.predictor=no` must mean False (a string 'no' is truthy: BYOL kept its
    predictor), numbers from the command line become the field's type, and a value that does
    not convert is refused naming its key."""
    cfg = apply_overrides(
        Config(),
        {
            "method.name": "byol",
            "method.predictor": "no",
            "method.proj_dim": "128",
            "method.momentum_base": "0.99",
        },
    )
    assert cfg.method.params == {"predictor": False, "proj_dim": 128, "momentum_base": 0.99}
    assert config_from_dict(cfg.to_dict()) == cfg
    from selfsup.methods import get_method

    byol = get_method("byol")
    assert byol.make_config({"predictor": "off"}).predictor is False
    assert byol.make_config({"predictor": "true"}).predictor is True
    with pytest.raises(SelfsupError, match=r"'method\.proj_dim' expects int, got 128\.5"):
        apply_overrides(Config(), {"method.name": "byol", "method.proj_dim": 128.5})
    with pytest.raises(SelfsupError, match=r"'method\.proj_dim' expects int"):
        byol.make_config({"proj_dim": "128.5"})
    with pytest.raises(SelfsupError, match=r"'method\.predictor' expects true or false"):
        byol.make_config({"predictor": "maybe"})
    # Optional fields take none; strings stay strings
    moco = get_method("moco").make_config({"temperature": "none"})
    assert moco.temperature == 0.2  # None: the version's default
    assert get_method("triplet").make_config({"negatives": "hardest"}).negatives == "hardest"


def test_flatten_is_the_one_home_of_dotted_keys():
    """config files keep method.params whole; config.json's table and `compare` flatten it;
    the report keeps an empty section visible."""
    tree = {"method": {"name": "simclr", "params": {"temperature": 0.1}}, "eval": {}}
    assert flatten(tree) == {"method.name": "simclr", "method.params": {"temperature": 0.1}}
    assert flatten(tree, whole=()) == {"method.name": "simclr", "method.params.temperature": 0.1}
    assert flatten(tree, whole=(), keep_empty=True)["eval"] == {}


def test_augment_none_names_the_recipe_that_does_nothing_not_the_default():
    """`--augment none` must not be read as unset (which picks the data's default recipe)."""
    assert apply_overrides(Config(), {"method.augment": "none"}).method.augment == "none"
    assert apply_overrides(Config(), {"method.augment": "None"}).method.augment == "none"
    assert apply_overrides(Config(), {"method.augment": None}).method.augment is None
