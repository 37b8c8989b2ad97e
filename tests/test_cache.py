"""The compiled-kernel cache: on by default in a per-user directory, versioned, private,
and never the reason a loss fails (issue 18's cache bullet; issue 19 items 3 and 14).

The in-process tests compile one tiny function through lossreg's cache (a fresh
dispatcher per step, so each step really loads or compiles); the subprocess tests use
mse only and a temporary HOME, so they never touch the user's real cache.
"""

import errno
import json
import os
import pathlib
import subprocess
import sys
import warnings

import numba
import numpy as np
import pytest
from numba.core.caching import IndexDataCacheFile

import lossreg
from lossreg import CacheWarning, LossregWarning, _cachedir
from lossreg.kernels import _cache
from lossreg.kernels._jit import njit, serial_twin

POSIX_PERMISSIONS = os.name == "posix" and hasattr(os, "geteuid")
IS_ROOT = POSIX_PERMISSIONS and os.geteuid() == 0


def _plus_one(x):
    return x + 1.0


def _state(root: pathlib.Path) -> _cache.CacheState:
    return _cache.CacheState({"LOSSREG_CACHE": str(root), "HOME": str(root.parent)})


def _call(state: _cache.CacheState, x: float = 1.0):
    """A fresh dispatcher of ``_plus_one`` with ``state``'s cache, called once; returns
    (result, dispatcher, CacheWarnings given)."""
    dispatcher = _cache.attach(numba.njit(_plus_one), state)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = dispatcher(x)
    return result, dispatcher, [w for w in caught if issubclass(w.category, CacheWarning)]


def _hits(dispatcher) -> int:
    return sum(dispatcher.stats.cache_hits.values())


def _files(root: pathlib.Path, suffix: str) -> list[pathlib.Path]:
    return sorted(p for p in root.rglob(f"*{suffix}") if "_plus_one" in p.name)


# -- location, switch, key -------------------------------------------------------------------

def test_default_location_follows_the_platform():
    env = {"HOME": "/home/u"}
    assert _cachedir.default_root(env, "linux") == pathlib.Path("/home/u/.cache/lossreg")
    assert _cachedir.default_root({**env, "XDG_CACHE_HOME": "/xdg"}, "linux") == \
        pathlib.Path("/xdg/lossreg")
    assert _cachedir.default_root({**env, "XDG_CACHE_HOME": "rel"}, "linux") == \
        pathlib.Path("/home/u/.cache/lossreg")          # XDG: relative paths are ignored
    assert _cachedir.default_root(env, "darwin") == \
        pathlib.Path("/home/u/Library/Caches/lossreg")
    assert _cachedir.default_root({**env, "LOCALAPPDATA": "C:/Users/u/AppData/Local"},
                                  "win32") == pathlib.Path("C:/Users/u/AppData/Local/lossreg/Cache")


@pytest.mark.parametrize("word", ["0", "off", "FALSE", " no ", ""])
def test_off_words_disable_the_cache(word, tmp_path):
    env = {"LOSSREG_CACHE": word, "HOME": str(tmp_path)}
    assert _cachedir.configured_root(env) is None
    state = _cache.CacheState(env)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert state.directory() is None
    assert not any(tmp_path.iterdir())                  # nothing created


def test_unset_or_on_word_means_default_and_other_text_a_directory(tmp_path):
    home = {"HOME": str(tmp_path)}
    default = tmp_path / ".cache" / "lossreg"
    assert _cachedir.configured_root(home) == default
    assert _cachedir.configured_root({**home, "LOSSREG_CACHE": "1"}) == default
    assert _cachedir.configured_root({**home, "LOSSREG_CACHE": "/x/y"}) == pathlib.Path("/x/y")


def test_key_changes_with_every_version():
    key = _cachedir.cache_key("0.68.1", "0.1.0")
    assert "0.68.1" in key and "0.1.0" in key and sys.implementation.cache_tag in key
    assert _cachedir.cache_key("0.68.1", "0.1.1") != key
    assert _cachedir.cache_key("0.69.0", "0.1.0") != key
    assert _cache.CacheState().key() == _cachedir.cache_key(numba.__version__,
                                                            lossreg.__version__)


def test_directory_is_private_and_keyed(tmp_path):
    root = tmp_path / "cache"
    directory = _state(root).directory()
    assert directory == root / _cachedir.cache_key(numba.__version__)
    if POSIX_PERMISSIONS:
        assert (root.stat().st_mode & 0o777) == 0o700
        assert (directory.stat().st_mode & 0o777) == 0o700


def test_njit_attaches_the_cache_unless_told_not_to():
    eager = njit("float64(float64)")(_plus_one)          # a signature: compiled at once
    assert isinstance(eager._cache, _cache.KernelCache) and eager(1.0) == 2.0
    assert isinstance(njit(_plus_one)._cache, _cache.KernelCache)
    assert not isinstance(njit(cache=False)(_plus_one)._cache, _cache.KernelCache)
    with pytest.raises(ValueError, match="fastmath"):
        njit(fastmath=True)


def test_serial_twin_is_cached_apart_from_its_parallel_kernel():
    parallel = njit(parallel=True)(_plus_one)
    twin = serial_twin(parallel)
    assert isinstance(twin._cache, _cache.KernelCache)
    assert _cache.flavour(parallel) != _cache.flavour(twin)


# -- load, save, fall back ------------------------------------------------------------------

def test_second_dispatcher_loads_from_the_cache(tmp_path):
    state = _state(tmp_path / "cache")
    assert _call(state)[0] == 2.0
    assert _files(tmp_path, ".nbi") and _files(tmp_path, ".nbc")
    result, dispatcher, warned = _call(state, 2.0)
    assert result == 3.0 and _hits(dispatcher) == 1 and not warned


def test_lossreg_cache_wins_over_numba_cache_dir(tmp_path, monkeypatch):
    other = tmp_path / "numba"
    other.mkdir()
    monkeypatch.setattr(numba.core.config, "CACHE_DIR", str(other))
    state = _state(tmp_path / "cache")
    _call(state)
    assert _files(tmp_path / "cache", ".nbi") and not any(other.iterdir())


def test_import_changes_no_numba_setting():
    code = ("import os, lossreg.kernels, numba; "
            "print(repr(numba.config.CACHE_DIR), 'NUMBA_CACHE_DIR' in os.environ)")
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["''", "False"]


def _garble(path: pathlib.Path, how: str) -> None:
    data = path.read_bytes()
    if how == "empty":
        path.write_bytes(b"")
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    else:   # garbled: keep the pickled version header, flip the rest
        path.write_bytes(data[:12] + bytes(b ^ 0x5A for b in data[12:]))


@pytest.mark.parametrize("suffix", [".nbi", ".nbc"])
@pytest.mark.parametrize("how", ["empty", "truncated", "garbled"])
def test_corrupt_entry_recompiles_with_one_warning_and_is_rewritten(tmp_path, suffix, how):
    root = tmp_path / "cache"
    _call(_state(root))
    for path in _files(root, suffix):
        _garble(path, how)
    state = _state(root)                                 # a new process's view
    result, dispatcher, warned = _call(state)
    assert result == 2.0 and _hits(dispatcher) == 0
    assert len(warned) == 1 and "recompiling" in str(warned[0].message)
    assert _call(state)[2] == []                         # at most one warning per process
    result, dispatcher, warned = _call(_state(root))     # the entry was rewritten
    assert result == 2.0 and _hits(dispatcher) == 1 and not warned


@pytest.mark.parametrize("code", [errno.EROFS, errno.ENOSPC, errno.EACCES])
def test_unwritable_cache_compiles_in_memory_with_one_warning(tmp_path, monkeypatch, code):
    def fail(self, filepath):
        raise OSError(code, os.strerror(code), filepath)

    monkeypatch.setattr(IndexDataCacheFile, "_open_for_write", fail)
    state = _state(tmp_path / "cache")
    result, _, warned = _call(state)
    assert result == 2.0 and len(warned) == 1
    assert "in memory" in str(warned[0].message)
    assert _call(state)[2] == []                         # one warning at most
    assert not _files(tmp_path, ".nbi")


@pytest.mark.skipif(not POSIX_PERMISSIONS or IS_ROOT,
                    reason="needs POSIX permissions that bind this user (not root)")
def test_read_only_directory_compiles_in_memory_with_one_warning(tmp_path):
    root = tmp_path / "cache"
    _state(root).directory()                             # made, then made read-only
    for path in (root, *root.iterdir()):
        path.chmod(0o500)
    try:
        state = _state(root)
        result, _, warned = _call(state)
        assert result == 2.0 and len(warned) == 1
        assert _call(state)[2] == []
    finally:
        for path in (root, *root.iterdir()):
            path.chmod(0o700)


# -- trust ---------------------------------------------------------------------------------

@pytest.mark.skipif(not POSIX_PERMISSIONS, reason="POSIX permissions")
@pytest.mark.parametrize("mode", [0o777, 0o770, 0o702])
def test_group_or_world_writable_directory_is_refused(tmp_path, mode):
    root = tmp_path / "cache"
    _call(_state(root))                                  # a genuine entry...
    root.chmod(mode)                                     # ...that others could replace
    state = _state(root)
    result, dispatcher, warned = _call(state)
    assert result == 2.0 and _hits(dispatcher) == 0     # not loaded
    assert len(warned) == 1 and "untrusted" in str(warned[0].message)
    assert state.directory() is None and _call(state)[2] == []


@pytest.mark.skipif(not POSIX_PERMISSIONS, reason="POSIX permissions")
def test_writable_key_directory_is_refused_too(tmp_path):
    root = tmp_path / "cache"
    directory = _state(root).directory()
    directory.chmod(0o777)
    with pytest.warns(CacheWarning, match="writable by others"):
        assert _state(root).directory() is None


@pytest.mark.skipif(not IS_ROOT, reason="chown to another user needs root")
def test_directory_owned_by_another_user_is_refused(tmp_path):
    root = tmp_path / "cache"
    root.mkdir(mode=0o700)
    os.chown(root, 65534, 65534)
    with pytest.warns(CacheWarning, match="owned by another user"):
        assert _state(root).directory() is None


def test_cache_warning_is_a_lossreg_warning():
    assert issubclass(CacheWarning, LossregWarning) and issubclass(LossregWarning, UserWarning)


# -- the real kernels and the command line, in fresh processes (mse only) -----------------------

def _lossreg(args, home: pathlib.Path, **env):
    environ = {k: v for k, v in os.environ.items()
               if k not in ("LOSSREG_CACHE", "XDG_CACHE_HOME", "NUMBA_CACHE_DIR")}
    environ.update(HOME=str(home), **env)
    return subprocess.run([sys.executable, "-m", "lossreg", *args], env=environ,
                          capture_output=True, text=True, timeout=300)


def test_default_directory_in_a_new_process(tmp_path):
    code = "from lossreg.kernels._cache import STATE; print(STATE.directory())"
    environ = {k: v for k, v in os.environ.items()
               if k not in ("LOSSREG_CACHE", "XDG_CACHE_HOME")}
    for extra, root in [({}, tmp_path / ".cache" / "lossreg"),
                        ({"XDG_CACHE_HOME": str(tmp_path / "xdg")}, tmp_path / "xdg" / "lossreg")]:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={**environ, "HOME": str(tmp_path), **extra}, timeout=120)
        assert out.returncode == 0, out.stderr
        assert pathlib.Path(out.stdout.strip()).parent == root
        if POSIX_PERMISSIONS:
            assert (root.stat().st_mode & 0o777) == 0o700


def test_cli_warm_info_eval_clear_and_a_corrupt_entry(tmp_path):
    t, p = tmp_path / "t.npy", tmp_path / "p.npy"
    rng = np.random.default_rng(0)
    np.save(t, rng.normal(size=1000))
    np.save(p, rng.normal(size=1000))
    root = tmp_path / ".cache" / "lossreg"

    out = _lossreg(["cache", "warm", "mse", "--dtype", "float64"], tmp_path)
    assert out.returncode == 0 and "warmed 1 losses" in out.stdout, out.stderr
    info = json.loads(_lossreg(["cache", "info", "--json"], tmp_path).stdout)
    assert info["directory"] == str(root) and info["state"] == "on"
    assert info["entries"] >= 2 and info["bytes"] > 0
    out = _lossreg(["cache", "warm", "mse", "--dtype", "float64", "--hessian"], tmp_path)
    assert out.returncode == 0 and "(with grad_hess)" in out.stdout, out.stderr
    more = json.loads(_lossreg(["cache", "info", "--json"], tmp_path).stdout)["entries"]
    assert more > info["entries"]                       # the grad_hess kernel was added

    index = sorted(root.rglob("*.nbi"))
    before = {f: f.stat().st_mtime_ns for f in index}
    out = _lossreg(["eval", "mse", str(t), str(p)], tmp_path)
    assert out.returncode == 0 and "value:" in out.stdout and not out.stderr, out.stderr
    assert {f: f.stat().st_mtime_ns for f in index} == before     # loaded, not rewritten

    for f in index:                                          # issue 19 item 3
        f.write_bytes(f.read_bytes()[:7])
    out = _lossreg(["eval", "mse", str(t), str(p)], tmp_path)
    assert out.returncode == 0 and "value:" in out.stdout
    assert "Traceback" not in out.stderr
    assert out.stderr.count("lossreg: warning:") == 1 and "recompiling" in out.stderr

    (root / "keep-me").mkdir()                               # not lossreg's: left alone
    out = _lossreg(["cache", "clear"], tmp_path)
    assert out.returncode == 0 and "removed" in out.stdout
    assert [p.name for p in root.iterdir()] == ["keep-me"]
    assert json.loads(_lossreg(["cache", "info", "--json"], tmp_path).stdout)["entries"] == 0


@pytest.mark.skipif(not POSIX_PERMISSIONS, reason="POSIX permissions")
def test_cli_on_an_untrusted_directory(tmp_path):
    root = tmp_path / "shared"
    root.mkdir()
    root.chmod(0o777)
    env = {"LOSSREG_CACHE": str(root)}
    info = json.loads(_lossreg(["cache", "info", "--json"], tmp_path, **env).stdout)
    assert info["state"] == "refused" and "writable by others" in info["reason"]
    out = _lossreg(["cache", "warm", "mse"], tmp_path, **env)
    assert out.returncode == 1 and "Traceback" not in out.stderr
    assert out.stderr.count("\n") <= 2 and "untrusted" in out.stderr
    assert not any(root.iterdir())


def test_cli_with_the_cache_off(tmp_path):
    info = json.loads(_lossreg(["cache", "info", "--json"], tmp_path,
                               LOSSREG_CACHE="0").stdout)
    assert info["state"] == "off" and info["directory"] is None
    out = _lossreg(["cache", "clear"], tmp_path, LOSSREG_CACHE="off")
    assert out.returncode == 0 and "off" in out.stdout
    assert not (tmp_path / ".cache").exists()


def test_compile_notice_is_given_once_and_only_for_long_compiles(monkeypatch):
    import io
    import time

    stream = io.StringIO()
    monkeypatch.setattr(_cachedir, "NOTICE_STREAM", stream)
    notice = _cache.CompileNotice(delay=0.05)
    notice.begin("quick_elem, float64")
    notice.end()                                         # done before the delay: silent
    time.sleep(0.2)
    assert stream.getvalue() == ""
    notice.begin("slow_elem, float32")
    notice.begin("nested_elem, float32")                 # a nested compile: one notice
    time.sleep(0.5)
    notice.end()
    notice.end()
    notice.begin("later_elem, float64")                  # once per process
    time.sleep(0.2)
    notice.end()
    assert stream.getvalue().count("\n") == 1
    assert stream.getvalue().startswith("lossreg: compiling kernels (slow_elem, float32)")
