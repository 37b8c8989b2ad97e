"""Configs: from_config round trips, weighted sums, files, errors, and the experiments."""

import collections.abc
import json
import math
import pathlib
import sys

import numpy as np
import pytest

import lossreg
from lossreg import ConfigError, HyperparameterError, UnknownLossError
from lossreg.config import WeightedSum, from_config, load_file

from .conftest import ALL_NAMES, run_python

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _non_default(spec):
    """Hyperparameters other than the defaults, inside their intervals, where easy."""
    out = {}
    for key, h in spec.hyperparameters.items():
        if h.type is float and h.interval is not None:
            lo, hi = h.interval.low, h.interval.high
            cand = 0.3 if lo <= 0.3 <= hi and h.default != 0.3 else (lo + 1 if math.isinf(hi) else None)
            if cand is not None and cand in h.interval:
                try:    # a value the spec refuses as a whole (tweedie's 0 < power < 1)
                    spec.args_for(spec.resolve({**out, key: cand}))
                except lossreg.HyperparameterError:
                    continue
                out[key] = cand
    return out


@pytest.mark.parametrize("name", ALL_NAMES)
def test_round_trip_through_json_is_exact(name):
    spec = lossreg.spec(name)
    reduction = "sum" if "sum" in spec.reductions else spec.reductions[0]
    loss = lossreg.get(name, reduction=reduction, **_non_default(spec))
    cfg = json.loads(json.dumps(loss.config()))
    again = from_config(cfg)
    assert again == loss and again.config() == loss.config()
    t, p = spec.sample(np.random.default_rng(3), 9)
    v1, g1 = loss.value_and_grad(t, p)
    v2, g2 = again.value_and_grad(t, p)
    assert np.array_equal(v1, v2) and np.array_equal(g1, g2)


def test_config_keys_and_aliases():
    loss = from_config({"name": "Smooth-L1", "beta": 0.5, "reduction": "sum"})
    assert loss.config() == {"name": "smooth_l1", "beta": 0.5, "reduction": "sum"}
    assert from_config({"loss": {"name": "l1"}}).name == "mae"     # a [loss] table
    assert from_config({"name": "mse", "weight": 1.0}) == lossreg.get("mse")


class FrozenMapping(collections.abc.Mapping):
    """Stands in for an OmegaConf DictConfig: a Mapping that is not a dict."""

    def __init__(self, data):
        self._data = data

    def __getitem__(self, key):
        return self._data[key]

    def __iter__(self):
        return iter(self._data)

    def __len__(self):
        return len(self._data)


def test_any_mapping_and_sequence_is_accepted():
    cfg = FrozenMapping({"name": "softmax_cross_entropy", "class_weight": (1.0, 2.0, 0.5)})
    loss = from_config(cfg)
    assert loss.config()["class_weight"] == [1.0, 2.0, 0.5]
    cfg = FrozenMapping({"terms": (FrozenMapping({"name": "mse", "weight": 2}),)})
    assert isinstance(from_config(cfg), WeightedSum)


def test_none_string_for_nullable_hyperparameters():
    assert from_config({"name": "focal", "alpha": "none"}).hyperparameters["alpha"] is None
    with pytest.raises(HyperparameterError, match="gamma"):
        from_config({"name": "focal", "gamma": "none"})     # gamma is not nullable


def test_registry_argument():
    reg = lossreg.Registry(entry_points=False)
    assert from_config({"name": "huber"}, registry=reg).spec is reg.spec("huber")


# -- weighted sums ------------------------------------------------------------------------------

Y_TRUE = np.array([0.0, 1.0, 2.0, 10.0])
Y_PRED = np.array([0.5, 1.0, 3.5, 2.0])
W = np.array([1.0, 2.0, 0.0, 3.0])
SUM_CFG = {"terms": [{"name": "mse", "weight": 1.0}, {"name": "huber", "delta": 0.5,
                                                      "weight": 0.1}]}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_weighted_sum_value_and_grad(reduction):
    combo = from_config({**SUM_CFG, "reduction": reduction})
    mse, hub = lossreg.get("mse", reduction), lossreg.get("huber", reduction, delta=0.5)
    for sw in (None, W):
        expected = mse(Y_TRUE, Y_PRED, sw) + 0.1 * hub(Y_TRUE, Y_PRED, sw)
        expected_g = mse.grad(Y_TRUE, Y_PRED, sw) + 0.1 * hub.grad(Y_TRUE, Y_PRED, sw)
        np.testing.assert_allclose(combo(Y_TRUE, Y_PRED, sw), expected, rtol=1e-15)
        np.testing.assert_allclose(combo.grad(Y_TRUE, Y_PRED, sw), expected_g, rtol=1e-15)
        out = np.full(4, np.nan)
        v, g = combo.value_and_grad(Y_TRUE, Y_PRED, sw, out=out)
        assert g is out
        np.testing.assert_allclose(v, expected, rtol=1e-15)
        np.testing.assert_allclose(g, expected_g, rtol=1e-15)
    assert isinstance(combo(Y_TRUE, Y_PRED), float if reduction != "none" else np.ndarray)


def test_weighted_sum_mean_is_the_weighted_mean_of_the_combined_loss():
    combo = from_config(SUM_CFG)
    per = from_config({**SUM_CFG, "reduction": "none"})(Y_TRUE, Y_PRED)
    assert combo(Y_TRUE, Y_PRED, W) == pytest.approx(np.sum(W * per) / np.sum(W), rel=1e-14)


def test_weighted_sum_interface_and_round_trip():
    combo = from_config(SUM_CFG)
    assert isinstance(combo, lossreg.Loss) and combo.spec is None
    assert combo.name == "weighted_sum" and combo.reduction == "mean"
    assert combo.label == "1*mse + 0.1*huber(delta=0.5)"
    assert combo.hyperparameters["terms"][1] == {"name": "huber", "weight": 0.1, "delta": 0.5}
    cfg = json.loads(json.dumps(combo.config()))
    assert cfg == {"terms": [{"name": "mse", "weight": 1.0},
                             {"name": "huber", "weight": 0.1, "delta": 0.5}], "reduction": "mean"}
    again = from_config(cfg)
    assert again == combo and again.config() == cfg and again != lossreg.get("mse")
    assert repr(combo).startswith("lossreg.from_config(")
    f32 = combo.grad(Y_TRUE.astype(np.float32), Y_PRED.astype(np.float32))
    assert f32.dtype == np.float32


def test_nested_and_single_weighted_terms():
    nested = from_config({"terms": [{"name": "mae", "weight": 0.5}, {**SUM_CFG, "weight": 2.0}]})
    inner = from_config(SUM_CFG)
    assert nested(Y_TRUE, Y_PRED) == pytest.approx(
        0.5 * lossreg.get("mae")(Y_TRUE, Y_PRED) + 2 * inner(Y_TRUE, Y_PRED), rel=1e-14)
    assert from_config(nested.config()) == nested
    scaled = from_config({"name": "mse", "weight": 3.0, "reduction": "sum"})
    assert isinstance(scaled, WeightedSum)
    assert scaled(Y_TRUE, Y_PRED) == 3 * lossreg.get("mse", "sum")(Y_TRUE, Y_PRED)
    assert from_config(scaled.config()) == scaled


def test_weighted_sum_errors():
    with pytest.raises(ConfigError, match="share one reduction"):
        from_config({"terms": [{"name": "mse", "reduction": "sum"}], "reduction": "mean"})
    # a term copied from Loss.config() with the same reduction is fine
    from_config({"terms": [dict(lossreg.get("mse").config(), weight=1.0)]})
    with pytest.raises(ConfigError, match="rows"):
        from_config({"terms": [{"name": "mse"}, {"name": "cross_entropy"}], "reduction": "none"})
    with pytest.raises(ConfigError, match="empty"):
        from_config({"terms": []})
    with pytest.raises(ConfigError, match="list"):
        from_config({"terms": {"name": "mse"}})
    with pytest.raises(HyperparameterError, match="weight"):
        from_config({"terms": [{"name": "mse", "weight": -1}]})
    with pytest.raises(HyperparameterError, match="weight"):
        from_config({"terms": [{"name": "mse", "weight": "heavy"}]})
    with pytest.raises(ConfigError, match="did you mean 'terms'"):
        from_config({"terms": [{"name": "mse"}], "temrs": 1})
    with pytest.raises(lossreg.ReductionError, match="supports only reduction"):
        from_config({"terms": [{"name": "rmse"}], "reduction": "sum"})


# -- errors -------------------------------------------------------------------------------------

def test_unknown_keys_suggest():
    with pytest.raises(ConfigError, match="unknown key 'wieght'.*did you mean 'weight'"):
        from_config({"name": "mse", "wieght": 2})
    with pytest.raises(ConfigError, match="unknown key 'detla'.*did you mean 'delta'"):
        from_config({"name": "huber", "detla": 1.0})
    with pytest.raises(ConfigError, match="did you mean 'name'"):
        from_config({"nmae": "huber"})
    with pytest.raises(UnknownLossError, match="did you mean 'huber'"):
        from_config({"name": "hubr"})


@pytest.mark.parametrize("cfg, hyper, error", [
    ({"name": "huber", "delta": -1}, {"delta": -1}, HyperparameterError),
    ({"name": "huber", "delta": "big"}, {"delta": "big"}, HyperparameterError),
    ({"name": "focal", "gamma": float("nan")}, {"gamma": float("nan")}, HyperparameterError),
    ({"name": "huber", "reduction": "avg"}, {"reduction": "avg"}, lossreg.ReductionError),
    ({"name": "rmse", "reduction": "none"}, {"reduction": "none"}, lossreg.ReductionError),
])
def test_bad_values_raise_what_get_raises(cfg, hyper, error):
    with pytest.raises(error) as from_get:
        lossreg.get(cfg["name"], **hyper)
    with pytest.raises(error) as from_cfg:
        from_config(cfg)
    assert str(from_cfg.value) == str(from_get.value)


@pytest.mark.parametrize("cfg, match", [
    ({"_target_": "torch.nn.MSELoss"}, "import or call code"),
    ({"name": "torch.nn.MSELoss"}, "module path"),
    ({"name": "lossreg_evil_module:make"}, "module path"),
    ({"name": "huber", "delta": "builtins.eval"}, "module path"),
    ({"name": "huber", "delta": "__import__('os')"}, "module path or a call"),
    ({"name": "huber", "delta": "lambda x: x"}, "module path or a call"),
    ({"name": "huber", "delta": print}, "plain data"),
    ({"name": "huber", "delta": "${oc.env:DELTA}"}, "interpolation"),
    ({"name": "mse", 1: 2}, "keys must be strings"),
    ({"name": "mse", "terms": []}, "not both"),
    ({"reduction": "sum"}, "needs 'name'"),
    ({"name": 3}, "must be a string"),
])
def test_configs_never_name_code(cfg, match):
    before = set(sys.modules)
    with pytest.raises(ConfigError, match=match):
        from_config(cfg)
    assert not {m for m in set(sys.modules) - before if "evil" in m or m == "torch"}


def test_not_a_mapping():
    with pytest.raises(ConfigError, match="mapping"):
        from_config([{"name": "mse"}])


# -- files --------------------------------------------------------------------------------------

def test_toml_json_yaml_files(tmp_path):
    (tmp_path / "a.toml").write_text('name = "huber"\ndelta = 0.5\nreduction = "sum"\n')
    (tmp_path / "b.json").write_text(json.dumps(from_config(SUM_CFG).config()))
    (tmp_path / "c.toml").write_text('[loss]\nterms = [{name = "mse", weight = 1.0}, '
                                     '{name = "huber", delta = 0.5, weight = 0.1}]\n')
    assert from_config(tmp_path / "a.toml") == lossreg.get("huber", "sum", delta=0.5)
    assert from_config(str(tmp_path / "b.json")) == from_config(SUM_CFG)
    assert from_config(tmp_path / "c.toml") == from_config(SUM_CFG)
    pytest.importorskip("yaml")
    (tmp_path / "d.yaml").write_text("name: focal\nalpha: null\ngamma: 1.5\n")
    assert from_config(tmp_path / "d.yaml") == lossreg.get("focal", alpha=None, gamma=1.5)
    (tmp_path / "e.yml").write_text("!!python/object/apply:os.system ['echo hi']\n")
    with pytest.raises(ConfigError, match="invalid YAML"):      # safe_load refuses
        from_config(tmp_path / "e.yml")


def test_file_errors(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="not found"):
        from_config(tmp_path / "missing.toml")
    (tmp_path / "x.ini").write_text("name=mse")
    with pytest.raises(ConfigError, match="unknown config format"):
        from_config(tmp_path / "x.ini")
    (tmp_path / "bad.toml").write_text("name = \n")
    with pytest.raises(ConfigError, match="invalid TOML"):
        from_config(tmp_path / "bad.toml")
    (tmp_path / "bad.json").write_text("{'name': 'mse'}")
    with pytest.raises(ConfigError, match="invalid JSON"):
        from_config(tmp_path / "bad.json")
    (tmp_path / "list.json").write_text("[1, 2]")
    with pytest.raises(ConfigError, match="top level"):
        load_file(tmp_path / "list.json")
    (tmp_path / "ok.yaml").write_text("name: mse\n")
    monkeypatch.setitem(sys.modules, "yaml", None)            # PyYAML not installed
    with pytest.raises(ConfigError, match=r"lossreg\[yaml\]"):
        from_config(tmp_path / "ok.yaml")
    monkeypatch.setitem(sys.modules, "tomllib", None)         # Python 3.10 without tomli
    monkeypatch.setitem(sys.modules, "tomli", None)
    (tmp_path / "ok.toml").write_text('name = "mse"\n')
    with pytest.raises(ConfigError, match=r"lossreg\[toml\]"):
        from_config(tmp_path / "ok.toml")


# -- experiments --------------------------------------------------------------------------------

from lossreg import experiments as ex  # noqa: E402


def reg_cfg(**over):
    exp = {"task": "regression", "dataset": "diabetes", "epochs": 150, **over}
    return {"experiment": exp, "losses": {"mse": {"name": "mse"},
                                          "huber": {"name": "huber", "delta": 1.0}}}


def test_load_experiment_validates():
    e = ex.load_experiment(reg_cfg())
    assert list(e.losses) == ["mse", "huber"] and e.settings["outlier_fraction"] == 0.1
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        ex.load_experiment(reg_cfg(epoch=3))
    with pytest.raises(ConfigError, match="for task 'regression'"):
        ex.load_experiment(reg_cfg(positive_fraction=0.1))
    with pytest.raises(ConfigError, match="learning_rate must be"):
        ex.load_experiment(reg_cfg(learning_rate=-1))
    with pytest.raises(ConfigError, match="is for task 'regression', not 'binary'"):
        ex.load_experiment(reg_cfg(task="binary"))
    with pytest.raises(ConfigError, match="did you mean 'losses'"):
        ex.load_experiment({**reg_cfg(), "lossess": {}})
    with pytest.raises(ConfigError, match="no \\[experiment\\]"):
        ex.load_experiment({"name": "mse"})
    bad = reg_cfg()
    bad["losses"]["x"] = {"name": "mse", "reduction": "none"}
    with pytest.raises(ConfigError, match="no scalar"):
        ex.load_experiment(bad)
    bad["losses"]["x"] = {"name": "huber", "detla": 1}
    with pytest.raises(ConfigError, match="losses.x.*did you mean 'delta'"):
        ex.load_experiment(bad)
    with pytest.raises(ConfigError, match="module path"):
        ex.load_experiment(reg_cfg(dataset="sklearn.datasets.fetch_openml"))


def test_metrics_agree_with_sklearn():
    metrics = pytest.importorskip("sklearn.metrics")
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.2).astype(float)
    score = np.round(rng.random(300) + 0.3 * y, 2)             # with ties
    assert ex.roc_auc(y, score) == pytest.approx(metrics.roc_auc_score(y, score), rel=1e-12)
    assert ex.average_precision(y, score) == pytest.approx(
        metrics.average_precision_score(y, score), rel=1e-12)


def test_regression_experiment_shows_robust_losses_winning():
    pytest.importorskip("sklearn")
    result = ex.run_experiment(reg_cfg(outlier_fraction=0.15, outlier_scale=5.0))
    rows = {r["label"]: r for r in result.rows}
    assert rows["huber"]["MAE"] < 0.85 * rows["mse"]["MAE"]
    table = ex.format_table(result)
    assert "best test MAE: huber" in table and "diabetes" in table
    clean = ex.run_experiment(reg_cfg(outlier_fraction=0.0))
    assert {r["label"]: r for r in clean.rows}["mse"]["R2"] > 0.4     # a real fit


@pytest.mark.parametrize("path", ex.example_paths(), ids=lambda p: p.name)
def test_example_files_load_and_run(path):
    pytest.importorskip("sklearn")
    if load_file(path)["experiment"].get("model") == "xgboost":
        pytest.importorskip("xgboost")
    result = ex.run_experiment(path, overrides={"epochs": 60})
    assert len(result.rows) == len(load_file(path)["losses"]) >= 4
    for row in result.rows:
        assert all(math.isfinite(row[m]) for m in result.metrics)


def test_from_config_points_experiment_files_to_lossreg_run():
    with pytest.raises(ConfigError, match="lossreg run"):
        from_config(ex.example_paths()[0])


def test_examples_compare_the_losses_the_issue_names():
    names = {p.name: {c.get("name") for c in load_file(p)["losses"].values()}
             for p in ex.example_paths()}
    assert {"mse", "huber", "smooth_l1", "mae"} <= names["robust_regression.toml"]
    assert {"binary_cross_entropy", "focal"} <= names["imbalanced_classification.toml"]


def test_config_module_does_not_import_the_package_root():
    """config.py takes default_registry from .registry, never ``from . import`` lossreg."""
    import ast

    tree = ast.parse((ROOT / "lossreg" / "config.py").read_text())
    root_imports = [node.lineno for node in ast.walk(tree)
                    if (isinstance(node, ast.ImportFrom)
                        and (node.level == 1 and node.module is None or node.module == "lossreg"))
                    or (isinstance(node, ast.Import)
                        and any(a.name == "lossreg" for a in node.names))]
    assert root_imports == [], f"config.py imports the lossreg package root at {root_imports}"
    code = ("import lossreg.config as c; "
            "print(c.from_config({'name': 'huber', 'delta': 0.5}).config()['name'])")
    assert run_python(code).strip() == "huber"
