"""One reading of lossreg's on/off environment switches (``LOSSREG_CACHE``,
``LOSSREG_DISABLE_PLUGINS``, ``LOSSREG_NO_PROGRESS``, ``CI``), so that ``0``, ``off``,
``false``, ``no`` and an empty value mean off for every one of them.

Words are compared case-insensitively, surrounding spaces ignored.
"""

from __future__ import annotations

import os
from typing import Mapping

__all__ = ["OFF", "ON", "switch", "flag"]

OFF = frozenset({"", "0", "false", "no", "off"})
ON = frozenset({"1", "true", "yes", "on"})


def switch(value: str | None) -> bool | None:
    """True for an on-word, False for an off-word or None (unset), None for any other text
    (which each switch interprets: LOSSREG_CACHE takes it as a directory)."""
    if value is None:
        return False
    word = value.strip().lower()
    if word in OFF:
        return False
    if word in ON:
        return True
    return None


def flag(name: str, environ: Mapping[str, str] | None = None) -> bool:
    """``environ[name]`` as a boolean: off-words and unset are False; on-words and any
    other non-empty text are True (a switch set to something is on)."""
    value = switch((os.environ if environ is None else environ).get(name))
    return True if value is None else value
