"""lossreg-metric: contrastive and center loss for lossreg (metric learning).

The losses live in ``lossreg_metric.losses`` (the entry point); the helpers to build
their inputs and to update class centers are re-exported here.
"""

from .losses import gather_centers, pair_distances, update_centers

__version__ = "0.1.0"
__all__ = ["gather_centers", "pair_distances", "update_centers"]
