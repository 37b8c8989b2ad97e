"""Hostile configs fail fast with ConfigError: alias and merge-key bombs, configs that
contain themselves, deep nesting, huge values quoted in messages, non-UTF-8 files.

The bombs are the ones of issue 19 (a few hundred bytes of YAML standing for 10^6 to
10^8 values). No time is asserted; each case finishes in well under a second because the
size bound is checked before anything walks, builds or quotes the config.
"""

import json
import sys

import pytest

import lossreg
from lossreg import _limits
from lossreg import config as config_mod
from lossreg.errors import ConfigError, HyperparameterError
from lossreg.experiments import load_experiment

yaml = pytest.importorskip("yaml")


def alias_bomb(anchor: str, leaf: str, levels: int) -> str:
    """``&a6 [&a5 [... &a0 [leaf x10] ..., *a0 x9], *a5 x9]``: 10^(levels + 1) leaves."""
    text = f"&{anchor}0 [" + ", ".join([leaf] * 10) + "]"
    for i in range(1, levels + 1):
        text = f"&{anchor}{i} [" + text + ", " + ", ".join([f"*{anchor}{i - 1}"] * 9) + "]"
    return text


def merge_bomb(levels: int) -> str:
    """YAML merge keys: PyYAML's constructor copies 10^levels key/value pairs."""
    text = "&m0 {" + ", ".join(f"k{j}: 1" for j in range(10)) + "}"
    for i in range(1, levels + 1):
        text = f"&m{i} {{<<: [" + text + ", " + ", ".join([f"*m{i - 1}"] * 9) + "]}"
    return text


BOMBS = {
    # 10^7 class weights: the HyperparameterError used to repr all of them (39 s, 1 GB)
    "class_weight": "name: softmax_cross_entropy\nclass_weight: "
                    + alias_bomb("a", "1.0", 6) + "\n",
    # 10^7 terms of a weighted sum (ran past 120 s)
    "terms": "terms: " + alias_bomb("t", "{name: mse}", 6) + "\n",
    # 10^8 leaves under a key nobody uses (the value walk ran before the key check)
    "unused_key": "name: mse\nunused: " + alias_bomb("u", "1", 7) + "\n",
    "merge_keys": "name: mse\nx: " + merge_bomb(8) + "\n",
    "self_reference": "name: mse\nx: &a [*a]\n",
    "self_mapping": "&a {name: mse, x: *a}\n",
    "deep_flow": "name: mse\nx: " + "[" * 5000 + "]" * 5000 + "\n",
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_yaml_bombs_are_config_errors(tmp_path, case):
    text = BOMBS[case]
    assert len(text) < 1000 or case == "deep_flow"
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=str(path.name)) as info:
        lossreg.from_config(path)
    assert len(str(info.value)) < 300


@pytest.mark.parametrize("levels", [350, 5000, 100_000])
def test_deep_json_is_a_config_error_not_a_recursion_error(tmp_path, levels):
    path = tmp_path / "deep.json"
    path.write_text('{"terms": ' + '[{"terms": ' * levels + '[{"name": "mse"}]'
                    + "}]" * levels + "}")
    with pytest.raises(ConfigError, match="nests deeper than"):
        lossreg.from_config(path)


def test_deep_toml_is_a_config_error(tmp_path):
    path = tmp_path / "deep.toml"
    path.write_text('name = "mse"\nx = ' + "[" * 3000 + "]" * 3000 + "\n")
    with pytest.raises(ConfigError, match="nests deeper than"):
        lossreg.from_config(path)


def test_mappings_that_contain_themselves():
    cfg = {"name": "mse"}
    cfg["x"] = cfg
    with pytest.raises(ConfigError, match="contains itself"):
        lossreg.from_config(cfg)
    terms = [{"name": "mse"}]
    terms.append({"terms": terms})
    with pytest.raises(ConfigError, match="contains itself"):
        lossreg.from_config({"terms": terms})
    exp = {"experiment": {"dataset": "diabetes"}, "losses": {}}
    exp["losses"]["a"] = exp
    with pytest.raises(ConfigError, match="contains itself"):
        load_experiment(exp)


def test_aliases_count_every_time_they_are_used():
    leaf = list(range(10))
    shared = [leaf] * 100                      # 1,000 leaves through one object
    cfg = {"name": "mse", "x": [shared] * 200}  # 200,000 leaves
    with pytest.raises(ConfigError, match="more than 100000 values"):
        lossreg.from_config(cfg)
    # the same object twice side by side is not a cycle
    ok = {"name": "softmax_cross_entropy", "class_weight": [1.0, 2.0]}
    _limits.check_size({"a": ok, "b": ok}, "config")


def test_bounds_are_read_at_call_time_and_the_walk_is_iterative(monkeypatch):
    deep: list = []
    node = deep
    for _ in range(5 * sys.getrecursionlimit()):
        node.append([])
        node = node[0]
    monkeypatch.setattr(_limits, "MAX_DEPTH", 10 * sys.getrecursionlimit())
    _limits.check_size(deep, "config")                     # no RecursionError
    monkeypatch.setattr(_limits, "MAX_DEPTH", 3)
    with pytest.raises(ConfigError, match="deeper than 3 levels"):
        _limits.check_size(deep, "config")
    monkeypatch.setattr(_limits, "MAX_NODES", 5)
    with pytest.raises(ConfigError, match="more than 5 values"):
        lossreg.from_config({"name": "mse", "reduction": "mean", "weight": 1.0})


def test_a_real_config_is_well_inside_the_bounds():
    nested = {"name": "mse"}
    for _ in range(10):                        # ten weighted sums, one inside the other
        nested = {"terms": [nested, {"name": "mae", "weight": 0.5}]}
    assert lossreg.from_config({"loss": nested}).name == "weighted_sum"
    weights = {"name": "softmax_cross_entropy", "class_weight": [1.0] * 50_000}
    assert lossreg.from_config(weights).hyperparameters["class_weight"].size == 50_000


def test_keys_are_checked_before_values(monkeypatch):
    seen = []
    real = config_mod._refuse_value
    monkeypatch.setattr(config_mod, "_refuse_value",
                        lambda value, where: (seen.append(where), real(value, where)))
    with pytest.raises(ConfigError, match="unknown key 'unused'"):
        lossreg.from_config({"name": "mse", "unused": [[1] * 10] * 10})
    assert not any("unused" in w for w in seen), seen
    with pytest.raises(ConfigError, match="unknown key 'extra' in a weighted sum"):
        lossreg.from_config({"terms": [{"name": "mse"}], "extra": [1, 2]})
    assert not any("extra" in w for w in seen), seen
    exp = {"experiment": {"dataset": "diabetes", "bogus": "os.system"},
           "losses": {"a": {"name": "mse"}}}
    with pytest.raises(ConfigError, match=r"unknown \[experiment\] key 'bogus'"):
        load_experiment(exp)
    with pytest.raises(ConfigError, match="needs task"):          # was a raw TypeError
        load_experiment({"experiment": {"dataset": [1]}, "losses": {"a": {"name": "mse"}}})


def test_messages_quote_large_values_briefly():
    big = [[1.0] * 1000] * 1000                # 10^6 numbers, not 1-D
    with pytest.raises(HyperparameterError) as info:
        lossreg.get("softmax_cross_entropy", class_weight=big)
    assert len(str(info.value)) < 400 and "..." in str(info.value)
    with pytest.raises(ConfigError) as info:
        lossreg.from_config({"name": ["x" * 10_000]})
    assert len(str(info.value)) < 400
    with pytest.raises(HyperparameterError) as info:
        lossreg.from_config({"terms": [{"name": "mse", "weight": "w" * 10_000}]})
    assert len(str(info.value)) < 400
    assert _limits.short_repr("abc") == "'abc'"


def test_non_utf8_toml_names_the_file(tmp_path):
    path = tmp_path / "latin1.toml"
    path.write_bytes('name = "mse"\n# caf\u00e9\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1\.toml: not UTF-8 text \(byte 0xe9"):
        lossreg.from_config(path)


def test_cli_refuses_a_bomb_in_one_line(tmp_path, capsys):
    from lossreg.cli import main

    path = tmp_path / "bomb.yaml"
    path.write_text(BOMBS["terms"])
    (tmp_path / "t.csv").write_text("1\n2\n")
    code = main(["eval", "--config", str(path), str(tmp_path / "t.csv"),
                 str(tmp_path / "t.csv")])
    err = capsys.readouterr().err
    assert code == 1 and len(err.strip().splitlines()) == 1 and "more than" in err
    exp = tmp_path / "exp.json"
    exp.write_text(json.dumps({"experiment": {"dataset": "diabetes"},
                               "losses": {"a": {"name": "mse", "x": [[[[[[]]]]]]}}})
                   .replace("[]", "[" * 40 + "]" * 40))
    code = main(["run", str(exp)])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err and "nests deeper" in err
