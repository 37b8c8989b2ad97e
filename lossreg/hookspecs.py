"""The one hook lossreg plugins implement (built-in losses use it too)."""

import pluggy

PROJECT = "lossreg"

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def register_losses(register):
    """Register loss specs by calling ``register(spec)`` once per ``lossreg.LossSpec``."""
