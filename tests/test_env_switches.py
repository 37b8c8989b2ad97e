"""Every lossreg environment switch reads on/off words the same way (lossreg._env)."""

import io

import pytest

from lossreg import _env
from lossreg._progress import enabled
from lossreg.kernels._jit import cache_setting
from lossreg.registry import plugins_disabled

OFF_WORDS = ["", "0", "off", "OFF", " false ", "no", "No"]
ON_WORDS = ["1", "on", "true", "YES", " yes "]


@pytest.mark.parametrize("word", OFF_WORDS)
def test_off_words_are_off_for_every_switch(word, monkeypatch):
    assert _env.switch(word) is False
    assert plugins_disabled({"LOSSREG_DISABLE_PLUGINS": word}) is False   # "off" disabled them
    assert cache_setting({"LOSSREG_CACHE": word}) is False

    class TTY(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("CI", word)
    monkeypatch.setenv("LOSSREG_NO_PROGRESS", word)                      # "0" hid the bar
    assert enabled(TTY())


@pytest.mark.parametrize("word", ON_WORDS)
def test_on_words_are_on_for_every_switch(word, monkeypatch):
    assert _env.switch(word) is True
    assert plugins_disabled({"LOSSREG_DISABLE_PLUGINS": word}) is True
    assert cache_setting({"LOSSREG_CACHE": word}) is True
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv("LOSSREG_NO_PROGRESS", word)

    class TTY(io.StringIO):
        def isatty(self):
            return True

    assert not enabled(TTY())


def test_unset_and_other_text():
    assert plugins_disabled({}) is False
    assert cache_setting({}) is True                     # the kernel cache is on by default
    assert _env.switch(None) is False and _env.switch("/tmp/kernels") is None
    assert plugins_disabled({"LOSSREG_DISABLE_PLUGINS": "please"}) is True   # set means on
    assert cache_setting({"LOSSREG_CACHE": "/tmp/kernels"}) == "/tmp/kernels"
