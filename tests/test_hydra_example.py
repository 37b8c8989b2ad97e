"""examples/hydra_app.py: the loss node of a Hydra app is a plain lossreg config, and the
documented overrides work under real Hydra (hydra-core, test extra; skipped without it)
and in the example's own fallback without Hydra."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
APP = ROOT / "examples" / "hydra_app.py"
SUM = "{terms: [{name: mse, weight: 1.0}, {name: mae, weight: 0.1}]}"
SUM_CONFIG = {"terms": [{"name": "mse", "weight": 1.0}, {"name": "mae", "weight": 0.1}],
              "reduction": "mean"}
# Runs the example as a script with Hydra hidden: the fallback path.
WITHOUT_HYDRA = ("import runpy, sys; sys.modules['hydra'] = None; sys.argv = sys.argv[1:]; "
                 "runpy.run_path(sys.argv[0], run_name='__main__')")


def run_app(tmp_path, *overrides, hydra: bool):
    pytest.importorskip("yaml")
    if hydra:
        pytest.importorskip("hydra")
        cmd = [sys.executable, str(APP), *overrides, f"hydra.run.dir={tmp_path / 'run'}"]
    else:
        cmd = [sys.executable, "-c", WITHOUT_HYDRA, str(APP), *overrides]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@pytest.mark.parametrize("hydra", [False, True], ids=["fallback", "hydra"])
def test_a_hyperparameter_override(tmp_path, hydra):
    result = run_app(tmp_path, "loss.delta=0.5", hydra=hydra)
    assert result["loss"] == {"name": "huber", "delta": 0.5, "reduction": "mean"}
    assert result["weight_error"] < 0.1            # Huber ignores the 10% outliers


@pytest.mark.parametrize("hydra", [False, True], ids=["fallback", "hydra"])
def test_the_documented_override_replaces_the_loss_with_a_weighted_sum(tmp_path, hydra):
    result = run_app(tmp_path, "~loss", f"+loss={SUM}", hydra=hydra)
    assert result["loss"] == SUM_CONFIG


def test_the_docs_give_the_override_that_works():
    documented = [(ROOT / "examples" / "conf" / "config.yaml").read_text(),
                  APP.read_text(), (ROOT / "docs" / "configs.md").read_text()]
    for text in documented:
        assert "'~loss' '+loss={terms:" in text
        assert "python examples/hydra_app.py 'loss={terms" not in text
