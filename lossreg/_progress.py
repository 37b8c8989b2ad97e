"""A tiny dependency-free progress bar on stderr for the command line.

Shown only when stderr is a terminal and neither ``CI`` nor ``LOSSREG_NO_PROGRESS`` is
on (``lossreg._env``: ``0``/``off``/``false``/``no`` are off), so pipes, logs, tests and ``--json`` consumers never see control characters.
"""

from __future__ import annotations

import sys
import time
from typing import Iterable, Iterator, TextIO, TypeVar

from ._env import flag

T = TypeVar("T")


def enabled(stream: TextIO | None = None) -> bool:
    """True when a bar would be visible to a person (a TTY, not under CI)."""
    stream = stream if stream is not None else sys.stderr
    if flag("CI") or flag("LOSSREG_NO_PROGRESS"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """``with Progress(total, "checking") as bar: ... bar.update(label)``.

    Redraws at most every 0.1 s; ``update`` with a label shows what is running now.
    Disabled (every method a no-op) unless :func:`enabled`, or when ``disable=True``.
    """

    def __init__(self, total: int, description: str = "", *, stream: TextIO | None = None,
                 disable: bool | None = None, width: int = 24):
        self.total = max(int(total), 0)
        self.description = description
        self.stream = stream if stream is not None else sys.stderr
        self.active = enabled(self.stream) if disable is None else not disable
        self.width = width
        self.done = 0
        self._last = 0.0
        self._start = time.perf_counter()

    def __enter__(self) -> "Progress":
        self._draw("", force=True)
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def update(self, label: str = "", n: int = 1) -> None:
        self.done += n
        self._draw(label)

    def set_label(self, label: str) -> None:
        """Show what is running now without advancing."""
        self._draw(label, force=True)

    def _draw(self, label: str, force: bool = False) -> None:
        if not self.active:
            return
        now = time.perf_counter()
        if not force and now - self._last < 0.1 and self.done < self.total:
            return
        self._last = now
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        bar = "#" * filled + "-" * (self.width - filled)
        text = (f"\r{self.description} [{bar}] {self.done}/{self.total} "
                f"{now - self._start:5.1f}s {label}")[:200]
        self.stream.write(text + "\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.active:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
            self.active = False


def track(items: Iterable[T], total: int, description: str = "", **kwargs) -> Iterator[T]:
    """Iterate ``items`` with a bar labelled by each item's ``str``."""
    with Progress(total, description, **kwargs) as bar:
        for item in items:
            bar.set_label(str(item))
            yield item
            bar.update(str(item))
