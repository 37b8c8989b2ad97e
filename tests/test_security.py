"""Configs and the CLI never import modules or evaluate expressions taken from input.

A sentinel module on sys.path records any import of itself in a file; every config and
CLI input that names it (as a loss name, a hyperparameter value, a composite term, a YAML
tag, an experiment field) must be refused with a lossreg error and leave no record.
"""

import json
import subprocess
import sys
import textwrap

import pytest

SENTINEL = "lossreg_sentinel_mod"

EVIL_CONFIGS = [
    {"name": SENTINEL},
    {"name": f"{SENTINEL}:make"},
    {"name": f"{SENTINEL}.make"},
    {"name": "huber", "delta": f"{SENTINEL}.delta"},
    {"name": "huber", "delta": f"__import__('{SENTINEL}')"},
    {"_target_": f"{SENTINEL}.Loss"},
    {"terms": [{"name": "mse", "weight": 1.0}, {"name": f"{SENTINEL}:loss", "weight": 1.0}]},
    {"loss": {"name": f"{SENTINEL}.loss"}},
]


@pytest.fixture
def sentinel(tmp_path):
    record = tmp_path / "imported.txt"
    (tmp_path / f"{SENTINEL}.py").write_text(textwrap.dedent(f"""
        import pathlib
        pathlib.Path({str(record)!r}).write_text("imported")
        def make(*a, **k):
            pathlib.Path({str(record)!r}).write_text("called")
        delta = 0.5
    """))
    return tmp_path, record


def _run(code: str, sentinel_dir, *args: str) -> subprocess.CompletedProcess:
    env_path = f"{sentinel_dir}"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env={**__import__("os").environ, "PYTHONPATH": env_path,
                               "LOSSREG_NO_PROGRESS": "1"}, timeout=300)


def test_from_config_never_imports(sentinel):
    folder, record = sentinel
    code = textwrap.dedent(f"""
        import json, sys, lossreg
        refused = 0
        for cfg in json.loads(sys.argv[1]):
            try:
                lossreg.from_config(cfg)
            except lossreg.LossError:
                refused += 1
        print(refused)
        assert {SENTINEL!r} not in sys.modules
    """)
    out = _run(code, folder, json.dumps(EVIL_CONFIGS))
    assert out.returncode == 0, out.stderr
    assert int(out.stdout.strip()) == len(EVIL_CONFIGS)
    assert not record.exists()


def test_config_files_never_import(sentinel, tmp_path):
    folder, record = sentinel
    files = []
    (tmp_path / "a.toml").write_text(f'name = "{SENTINEL}:make"\n')
    (tmp_path / "b.json").write_text(json.dumps({"name": "huber", "delta": f"{SENTINEL}.delta"}))
    (tmp_path / "c.yaml").write_text(f"!!python/object/apply:{SENTINEL}.make []\n")
    (tmp_path / "d.yaml").write_text(f"name: !!python/name:{SENTINEL}.make\n")
    files = [str(tmp_path / n) for n in ("a.toml", "b.json", "c.yaml", "d.yaml")]
    code = textwrap.dedent(f"""
        import sys, lossreg
        for path in sys.argv[1:]:
            try:
                lossreg.from_config(path)
            except lossreg.LossError as exc:
                print(type(exc).__name__)
            else:
                print("ACCEPTED", path)
        assert {SENTINEL!r} not in sys.modules
    """)
    out = _run(code, folder, *files)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["ConfigError"] * 4
    assert not record.exists()


def test_cli_never_imports(sentinel, tmp_path):
    import numpy as np

    folder, record = sentinel
    np.save(tmp_path / "t.npy", np.zeros(3))
    np.save(tmp_path / "p.npy", np.ones(3))
    (tmp_path / "exp.toml").write_text(f'name = "{SENTINEL}:make"\n')
    t, p = str(tmp_path / "t.npy"), str(tmp_path / "p.npy")
    commands = [
        ["eval", f"{SENTINEL}:make", t, p],
        ["eval", "huber", t, p, "--hyper", f"delta={SENTINEL}.delta"],
        ["eval", "--config", str(tmp_path / "exp.toml"), t, p],
        ["show", f"{SENTINEL}.make"],
        ["check", f"{SENTINEL}"],
        ["run", str(tmp_path / "exp.toml")],
    ]
    for command in commands:
        out = _run("import sys; from lossreg.cli import main; sys.exit(main(sys.argv[1:]))",
                   folder, *command)
        assert out.returncode != 0, command
        assert "Traceback" not in out.stderr, (command, out.stderr)
        assert not record.exists(), command
