"""README.md and .ci/run stay in agreement, and the README demo is true."""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]


def readme_commands():
    return re.findall(r"^\$ (.+)$", (ROOT / "README.md").read_text(), flags=re.M)


def test_readme_has_run_and_test_commands():
    run, test = readme_commands()[:2]
    assert run.startswith("pip install") and "lossreg" in run
    assert "pytest" in test and ".[test]" in test


def test_ci_runs_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "sed -n 's/^\\$ //p' README.md | sed -n '2p'" in ci


def test_demo_command_prints_values(capsys):
    from lossreg.cli import main

    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "huber" in out and "grad" in out
