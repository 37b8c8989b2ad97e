"""The test session's compiled-kernel cache (for tests/ and plugins/*/tests alike).

Set here, before anything imports lossreg's kernels, and put in ``os.environ`` so that
every subprocess a test starts inherits it and loads the kernels compiled earlier in the
session instead of compiling them again. Tests never write into the user's real cache
(the default, ``~/.cache/lossreg``): an ``LOSSREG_CACHE`` directory given from outside
wins and ``0`` turns caching off, but unset or an on-word (``1``) means a session
directory, ``$NUMBA_CACHE_DIR/lossreg`` when CI sets NUMBA_CACHE_DIR (.ci/run), else a
fresh temporary directory removed at exit. Tests about the cache itself or cold compiles
set their own ``LOSSREG_CACHE`` (and HOME / XDG_CACHE_HOME) in a subprocess.
"""

import atexit
import os
import shutil
import tempfile

from lossreg._env import switch


def _session_cache() -> str:
    numba_dir = os.environ.get("NUMBA_CACHE_DIR")
    if numba_dir:
        path = os.path.join(numba_dir, "lossreg")
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path
    path = tempfile.mkdtemp(prefix="lossreg-test-kernels-")    # 0700
    atexit.register(shutil.rmtree, path, True)
    return path


_given = os.environ.get("LOSSREG_CACHE")
if _given is None or switch(_given) is True:
    os.environ["LOSSREG_CACHE"] = _session_cache()

# Opt-in: LOSSREG_COMPILE_LOG=DIR logs every kernel compile per test (tests/compile_log.py).
if os.environ.get("LOSSREG_COMPILE_LOG"):
    pytest_plugins = ["tests.compile_log"]
