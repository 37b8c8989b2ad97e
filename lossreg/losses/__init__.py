"""Built-in losses, one module per family, each registered through the lossreg hook."""
