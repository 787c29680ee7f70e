"""Laws kernels (IBSI-2 section "Laws kernels"): separable products of normalised 1D kernels, optional
rotation invariance (pooling over right-angle rotations) and the texture-energy map.

Kernel names list one 1D kernel per axis in IBSI (x, y, z) order ("E5L5S5": E5 along x, L5 along y, S5 along z;
"L5S5" for a 2D filter in the axial plane); the arrays here are (z, y, x), so the name is read in reverse.
The filter is a true convolution (kernel reversed), as the IBSI-2 reference maps require for the antisymmetric E/S/W
kernels.
"""
from __future__ import annotations

import math
import re

import numpy as np

from radflow.imaging.filters.boundary import ndimage_mode
from radflow.imaging.filters.registry import FilterKind, FilterSpec, Spacing, radius_on_axes, require
from radflow.imaging.filters.rotations import require_pooling
from radflow.imaging.filters.separable import Factor, convolve_separable, rotation_invariant

# The normalised 1D Laws kernels (IBSI-2 table): each has unit L2 norm.
KERNELS_1D: dict[str, tuple[float, ...]] = {
    "L3": tuple(np.array([1, 2, 1]) / math.sqrt(6)),
    "E3": tuple(np.array([-1, 0, 1]) / math.sqrt(2)),
    "S3": tuple(np.array([-1, 2, -1]) / math.sqrt(6)),
    "L5": tuple(np.array([1, 4, 6, 4, 1]) / math.sqrt(70)),
    "E5": tuple(np.array([-1, -2, 0, 2, 1]) / math.sqrt(10)),
    "S5": tuple(np.array([-1, 0, 2, 0, -1]) / math.sqrt(6)),
    "W5": tuple(np.array([-1, 2, 0, -2, 1]) / math.sqrt(10)),
    "R5": tuple(np.array([1, -4, 6, -4, 1]) / math.sqrt(70)),
}
_NAME = re.compile(r"[LESWR][35]")


def parse_kernel(name: str, n_axes: int) -> list[str]:
    """``"E5L5S5"`` -> ``["E5", "L5", "S5"]`` (x, y, z order), checking one known kernel per filtered axis."""
    parts = _NAME.findall(name.upper())
    if "".join(parts) != name.upper() or len(parts) != n_axes or any(p not in KERNELS_1D for p in parts):
        raise ValueError(f"Laws kernel {name!r} must name {n_axes} 1D kernels from {sorted(KERNELS_1D)}")
    return parts


def laws_factors(name: str, axes: tuple[int, ...]) -> dict[int, Factor]:
    """Array axis -> 1D factor; ``axes`` are the filtered array axes in (z, y, x) order."""
    parts = parse_kernel(name, len(axes))
    return {axis: Factor(KERNELS_1D[part]) for axis, part in zip(axes, reversed(parts))}


def energy_map(response: np.ndarray, delta: int, axes: tuple[int, ...], boundary: str) -> np.ndarray:
    """Texture energy: mean of |response| over the (2 delta + 1)-voxel neighbourhood along ``axes``."""
    size = [1] * response.ndim
    for axis in axes:
        size[axis] = 2 * int(delta) + 1
    from scipy import ndimage  # imported here: the settings import every filter module, extract needs none

    return ndimage.uniform_filter(np.abs(response), size=size, mode=ndimage_mode(boundary), cval=0.0)


def laws(
    image: np.ndarray, name: str, axes: tuple[int, ...], boundary: str, *, rotation_invariance: bool = False,
    pooling: str = "max", energy: bool = False, energy_delta: int = 7,
) -> np.ndarray:
    """Laws response (or energy) map. With rotation invariance the responses of all right-angle rotations of the
    kernel are pooled first and the energy map is computed on the pooled response (IBSI-2 order)."""
    factors = laws_factors(name, axes)
    if rotation_invariance:
        response = rotation_invariant(image, factors, axes, boundary, pooling)
    else:
        response = convolve_separable(image, factors, boundary)
    return energy_map(response, energy_delta, axes, boundary) if energy else response


def _apply(image: np.ndarray, spacing: Spacing, spec: FilterSpec) -> np.ndarray:
    return laws(image, spec.laws_kernel, spec.axes, spec.boundary_condition,
                rotation_invariance=spec.rotation_invariance, pooling=spec.pooling or "max",
                energy=spec.energy_map, energy_delta=int(spec.energy_delta_voxels))


def _support_radius(spec: FilterSpec, spacing: Spacing) -> tuple[int, int, int]:
    half = max(int(part[1]) // 2 for part in parse_kernel(spec.laws_kernel, len(spec.axes)))
    return radius_on_axes(spec, half + (int(spec.energy_delta_voxels) if spec.energy_map else 0))


def _validate(spec: FilterSpec) -> None:
    require_pooling(spec, pooled=spec.rotation_invariance)
    require(spec.laws_kernel is not None, "laws_kernel is required, e.g. L5E5E5")
    parse_kernel(spec.laws_kernel, len(spec.axes))
    require(int(spec.energy_delta_voxels) >= 0, "energy_delta_voxels must be >= 0")


FILTER = FilterKind(
    name="laws",
    parameters={
        "laws_kernel": None,  # e.g. "L5E5E5" (x, y, z order)
        "energy_map": False,  # Laws texture-energy map
        "energy_delta_voxels": 7,
        "rotation_invariance": False,  # pool over the right-angle rotations
        "pooling": None,  # max | average | min (default max)
    },
    apply=_apply,
    support_radius=_support_radius,
    validate=_validate,
)
