"""Riesz transform of order l = (l_x, l_y, l_z) (IBSI-2), applied to a LoG or Simoncelli response:

    R^l(w) = sqrt(|l|! / (l_x! l_y! l_z!)) * prod_i (-j w_i / |w|)^(l_i),

a transfer function (0 at w = 0); the response map is the real part (the transform of a real image by an even
order is real, by an odd order purely real as well since the factor -j pairs with an odd function of w).
The order is given in IBSI (x, y, z) order, like the Laws and wavelet names.
"""
from __future__ import annotations

import math

import numpy as np


def riesz_transfer(order_xyz: tuple[int, ...]):
    """Transfer function for the filtered axes; ``order_xyz`` has one entry per filtered axis, x first."""
    order = tuple(int(v) for v in order_xyz)
    if any(v < 0 for v in order) or sum(order) == 0:
        raise ValueError(f"Riesz order must be non-negative integers, not all 0, got {order_xyz}")
    total = sum(order)
    scale = math.sqrt(math.factorial(total) / math.prod(math.factorial(v) for v in order))

    def transfer(frequencies: list[np.ndarray]) -> np.ndarray:
        # ``frequencies`` come in array-axis order (z, y, x) for the filtered axes: reverse to match x-first orders.
        norm = np.sqrt(sum(w**2 for w in frequencies))
        safe = np.where(norm == 0, 1.0, norm)
        out = np.full(np.broadcast_shapes(*(w.shape for w in frequencies)), scale, dtype=np.complex128)
        for w, power in zip(frequencies, reversed(order)):
            if power:
                out = out * (-1j * w / safe) ** power
        return np.where(norm == 0, 0.0, out)

    return transfer
