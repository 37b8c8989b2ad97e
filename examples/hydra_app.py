"""lossreg in a Hydra app, without Hydra being a lossreg dependency.

The loss is a node of the app's config. Hydra/OmegaConf give a DictConfig; turning it
into plain data with ``OmegaConf.to_container(cfg.loss, resolve=True)`` is all lossreg
needs: ``lossreg.from_config`` takes the dict, validates it (unknown keys get a
did-you-mean ConfigError) and never imports anything a config names (Hydra's
``_target_`` is refused).

    pip install hydra-core && python examples/hydra_app.py loss.delta=2.0
    python examples/hydra_app.py loss.delta=2.0      # without Hydra: same config, PyYAML

    # another loss altogether (a weighted sum): delete the node, then add the new one
    python examples/hydra_app.py '~loss' '+loss={terms: [{name: mse}, {name: mae, weight: 0.1}]}'

``loss={...}`` alone would *merge* into the existing ``loss`` node: Hydra refuses new keys
there ("Key 'terms' is not in struct"), and a merge would keep ``name`` next to ``terms``.

Without Hydra the script reads conf/config.yaml itself and applies the same overrides
(``a.b=value``, ``~a.b`` to delete, ``+a.b=value`` to add), so the code path through
``from_config`` is the same plain dict.
"""

from __future__ import annotations

import json
import pathlib
import sys

import numpy as np

import lossreg

CONF = pathlib.Path(__file__).resolve().parent / "conf"


def train(loss_cfg: dict, epochs: int = 300, learning_rate: float = 0.1, seed: int = 0) -> dict:
    """Fit y = X w + b with the configured loss on data with 10% gross outliers."""
    loss = lossreg.from_config(loss_cfg)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(400, 3))
    w_true = np.array([1.5, -2.0, 0.5])
    y = x @ w_true + 0.3 * rng.normal(size=400)
    y[rng.choice(400, 40, replace=False)] += 15.0           # one-sided outliers
    w, b, grad = np.zeros(3), 0.0, np.empty(400)
    for _ in range(epochs):
        value, g = loss.value_and_grad(y, x @ w + b, out=grad)
        w -= learning_rate * (x.T @ g)
        b -= learning_rate * float(g.sum())
    return {"loss": loss.config(), "final_value": float(value),
            "weight_error": float(np.abs(w - w_true).max()), "intercept": b}


def _set(cfg: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        cfg = cfg.setdefault(key, {})
    cfg[last] = value


def _delete(cfg: dict, dotted: str) -> None:
    *parents, last = dotted.split(".")
    for key in parents:
        cfg = cfg[key]
    del cfg[last]


def main_without_hydra(argv: list[str]) -> dict:
    import yaml  # PyYAML: pip install "lossreg[yaml]"

    cfg = lossreg.config.load_file(CONF / "config.yaml")
    for item in argv:
        key, _, text = item.partition("=")
        if key.startswith("~"):                              # `~loss`: delete the node
            _delete(cfg, key[1:])
        else:                                                # `+loss={...}` adds it
            _set(cfg, key.lstrip("+"), yaml.safe_load(text))  # `loss.delta=2.0` -> 2.0
    return train(cfg["loss"], **cfg.get("train", {}))


def main_with_hydra() -> None:
    import hydra
    from omegaconf import OmegaConf

    @hydra.main(version_base=None, config_path=str(CONF), config_name="config")
    def app(cfg) -> None:
        loss_cfg = OmegaConf.to_container(cfg.loss, resolve=True)   # a plain dict
        print(json.dumps(train(loss_cfg, **OmegaConf.to_container(cfg.train)), indent=2))

    app()


if __name__ == "__main__":
    try:
        import hydra  # noqa: F401
    except ImportError:
        print(json.dumps(main_without_hydra(sys.argv[1:]), indent=2))
    else:
        main_with_hydra()
