"""Riesz transform of order l = (l_x, l_y, l_z) (IBSI-2), applied to a LoG or Simoncelli response:

    R^l(w) = sqrt(|l|! / (l_x! l_y! l_z!)) * prod_i (-j w_i / |w|)^(l_i),     R^l(0) = 0,

a transfer function (evaluated in ``fourier``); the response map is the real part. The order is given in IBSI
(x, y, z) order, like the Laws and wavelet names (one entry per filtered axis).
"""
from __future__ import annotations

import numpy as np

from radflow.imaging.filters.registry import FilterSpec, require


def check_order(order_xyz) -> tuple[int, ...]:
    order = tuple(int(v) for v in order_xyz)
    if any(v < 0 for v in order) or sum(order) == 0:
        raise ValueError(f"Riesz order must be non-negative integers, not all 0, got {order_xyz}")
    return order


def riesz(response: np.ndarray, order_xyz, axes: tuple[int, ...]) -> np.ndarray:
    # numba compiles fourier's kernels: imported when used, not when the registry reads this module
    from radflow.imaging.filters.fourier import Transfer, apply_transfer

    return apply_transfer(response, Transfer(riesz_order_xyz=check_order(order_xyz)), axes)


def require_riesz_order(spec: FilterSpec) -> None:
    """For the ``validate`` of a filter with a Riesz stage: ``spec.riesz_order`` unset or a valid order."""
    if spec.riesz_order is not None:
        require(len(spec.riesz_order) == len(spec.axes), f"riesz_order needs {len(spec.axes)} entries (x, y, z order)")
        check_order(spec.riesz_order)
