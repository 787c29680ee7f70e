"""IBSI-2 boundary conditions (how an image is extended beyond its edge before filtering), in scipy/numpy terms.

IBSI "mirror" repeats the edge voxel (d c b a | a b c d): scipy.ndimage's ``reflect`` and numpy.pad's ``symmetric``,
*not* scipy's ``mirror`` (which skips the edge voxel). Checked against the IBSI-2 phase-1 reference maps.
"""
from __future__ import annotations

from typing import Any

import numpy as np

BOUNDARY_CONDITIONS = ("zero", "nearest", "periodic", "mirror")

_NDIMAGE = {"zero": "constant", "nearest": "nearest", "periodic": "wrap", "mirror": "reflect"}
_NUMPY_PAD: dict[str, Any] = {"zero": "constant", "nearest": "edge", "periodic": "wrap", "mirror": "symmetric"}


def ndimage_mode(boundary: str) -> str:
    """The ``scipy.ndimage`` ``mode`` for an IBSI boundary condition (cval 0 for ``constant``)."""
    return _NDIMAGE[boundary]


def pad(image: np.ndarray, widths, boundary: str) -> np.ndarray:
    """``image`` extended by ``widths`` (numpy.pad ``pad_width``) under an IBSI boundary condition."""
    return np.pad(image, widths, mode=_NUMPY_PAD[boundary])
