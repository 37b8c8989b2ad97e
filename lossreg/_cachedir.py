"""Where the compiled-kernel cache lives, under which key, and whether to trust it.

Standard library only (the ``lossreg cache`` command and the tests use it without
importing Numba); ``lossreg.kernels._cache`` plugs it into Numba.

- Location: ``LOSSREG_CACHE`` unset or an on-word (``1``, ``on``, ...) means the per-user
  default, ``$XDG_CACHE_HOME/lossreg`` or ``~/.cache/lossreg`` on Linux,
  ``~/Library/Caches/lossreg`` on macOS, ``%LOCALAPPDATA%\\lossreg\\Cache`` on Windows;
  an off-word (``0``, ``off``, ``false``, ``no``, empty; ``lossreg._env``) disables it;
  any other value is the directory.
- Key: a subdirectory per lossreg version, Numba version, Python implementation,
  machine and digest of lossreg's shared kernel sources, so an upgrade (or an edited
  checkout) never loads code compiled for something else.
- Trust: Numba's cache files are pickles, and loading one runs code. A directory (the
  root or its key) that another user owns (root excepted) or that its group or anyone
  can write to is refused; lossreg then compiles in memory. A new directory is made 0700.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import platform
import stat
import sys
from typing import Mapping

from ._env import switch

ENV = "LOSSREG_CACHE"
APP = "lossreg"

# Where the one "compiling kernels" notice goes besides the log (kernels._cache.NOTICE):
# None for library use; the command line sets stderr when a person is watching.
NOTICE_STREAM = None


def default_root(environ: Mapping[str, str] | None = None,
                 system: str | None = None) -> pathlib.Path:
    """The platform's per-user cache directory for lossreg."""
    env = os.environ if environ is None else environ
    system = sys.platform if system is None else system
    home = pathlib.Path(env.get("HOME") or os.path.expanduser("~"))
    if system.startswith("win"):
        base = env.get("LOCALAPPDATA") or str(home / "AppData" / "Local")
        return pathlib.Path(base) / APP / "Cache"
    if system == "darwin":
        return home / "Library" / "Caches" / APP
    xdg = env.get("XDG_CACHE_HOME", "")
    base = pathlib.Path(xdg) if xdg and os.path.isabs(xdg) else home / ".cache"
    return base / APP


def configured_root(environ: Mapping[str, str] | None = None) -> pathlib.Path | None:
    """The cache root ``LOSSREG_CACHE`` asks for, or None when it turns the cache off."""
    env = os.environ if environ is None else environ
    value = env.get(ENV)
    if value is None:
        return default_root(env)
    on = switch(value)
    if on is None:
        return pathlib.Path(os.path.expanduser(value.strip()))
    return default_root(env) if on else None


def _kernel_sources_digest() -> str:
    """A digest of lossreg's shared kernel sources (``lossreg/kernels/*.py``).

    Numba stamps a cache entry with its own source file only; the generated kernels
    inline code from these files, so an edit here must change the key too
    (``_cache.py``, the cache's own plumbing, compiles nothing and is left out)."""
    folder = pathlib.Path(__file__).parent / "kernels"
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.py")):
        if path.name == "_cache.py":
            continue
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def cache_key(numba_version: str, lossreg_version: str | None = None) -> str:
    """The versioned subdirectory name of the current interpreter, Numba and lossreg."""
    if lossreg_version is None:
        from . import __version__ as lossreg_version
    tag = sys.implementation.cache_tag or sys.implementation.name
    abiflags = getattr(sys, "abiflags", "")
    return (f"lossreg-{lossreg_version}_numba-{numba_version}_{tag}{abiflags}_"
            f"{platform.machine() or 'unknown'}_{_kernel_sources_digest()}")


def trust_problem(path: pathlib.Path) -> str | None:
    """Why ``path`` must not be loaded from (it may hold pickles), or None if it is safe:
    a directory owned by this user (or root) that neither group nor others can write.
    Not checked where there are no POSIX permissions (Windows)."""
    try:
        st = os.stat(path)
    except OSError as exc:
        return f"cannot inspect {path}: {exc.strerror or exc}"
    if not stat.S_ISDIR(st.st_mode):
        return f"{path} is not a directory"
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return None
    if st.st_uid not in (os.geteuid(), 0):
        return f"{path} is owned by another user (uid {st.st_uid})"
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "others" if st.st_mode & stat.S_IWOTH else "its group"
        return (f"{path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):o}; "
                f"`chmod 700 {path}` to use it)")
    return None


def make_private_dir(path: pathlib.Path) -> None:
    """Create ``path`` (and missing parents) with the new leaf directory 0700; an
    existing directory is left as it is (``trust_problem`` judges it)."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        return
    os.chmod(path, 0o700)    # mkdir's mode is masked by the umask; be explicit


def scan(root: pathlib.Path) -> dict:
    """Size and entries of a cache root: per key subdirectory, the number of index files
    (one per compiled function) and bytes on disk."""
    keys = {}
    if root.is_dir():
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            entries = size = 0
            for dirpath, _dirs, files in os.walk(sub):
                for name in files:
                    try:
                        size += os.stat(os.path.join(dirpath, name)).st_size
                    except OSError:
                        continue
                    entries += name.endswith(".nbi")
            keys[sub.name] = {"entries": entries, "bytes": size}
    return keys
