"""Gabor filter (IBSI-2): the complex 2D kernel, in voxel units of the plane,

    h(x, y) = exp(-(x'^2 + gamma^2 y'^2) / (2 sigma^2)) * exp(j 2 pi x' / lambda),
    x' = x cos(theta) + y sin(theta),   y' = -x sin(theta) + y cos(theta),

applied slice by slice; the response map is the modulus |f * h|. x and y are the IBSI (x, y) axes of the plane,
array axes 2 and 1 of an axial (z, y, x) slice. Rotation invariance pools the moduli over the orientations
theta = k delta_theta; with ``orthogonal_planes`` the axial, coronal and sagittal responses are averaged.

The kernel is not separable for a general theta, and with sigma of several voxels it spans tens of voxels per side,
so the convolution is done with FFTs (exact to rounding) on the image padded by the kernel radius under the
boundary condition, a slab of slices at a time to bound memory, one forward transform per slab for all orientations.
Orientations theta and theta + pi give conjugate kernels and so the same modulus: each is computed once and counted
with its multiplicity.
"""
from __future__ import annotations

import math

import numpy as np

from radflow.imaging.filters.boundary import pad
from radflow.imaging.filters.registry import FilterKind, FilterSpec, Radius, Spacing, require
from radflow.imaging.filters.rotations import Pool, require_pooling

# Planes as (y-axis, x-axis) of the 2D filter in (z, y, x) arrays: axial, coronal, sagittal.
PLANES = ((1, 2), (0, 2), (0, 1))
_SLAB_VOXELS = 4_000_000  # complex work arrays per slab stay around 0.2 GB


def gabor_kernel(sigma: tuple[float, float], wavelength: tuple[float, float], gamma: float, theta: float,
                 radius: tuple[int, int]) -> np.ndarray:
    """The kernel on a (2 ry + 1, 2 rx + 1) grid indexed (y, x); sigma and lambda in voxels per axis (y, x).

    Coordinates are scaled to mm-consistent units by expressing y in x-voxel units when the spacing differs."""
    (ry, rx), (sy, sx), (_, lx) = radius, sigma, wavelength  # the wave runs along the rotated x axis
    # Work in units where sigma is 1 along each axis, so anisotropic in-plane spacing stays physical.
    y = np.arange(-ry, ry + 1, dtype=np.float64)[:, None] / sy
    x = np.arange(-rx, rx + 1, dtype=np.float64)[None, :] / sx
    xr = x * math.cos(theta) + y * math.sin(theta)
    yr = -x * math.sin(theta) + y * math.cos(theta)
    cycles_per_sigma = sx / lx  # == sy / ly: lambda and sigma are both in mm
    return np.exp(-0.5 * (xr**2 + gamma**2 * yr**2)) * np.exp(2j * math.pi * cycles_per_sigma * xr)


def kernel_radius(sigma_voxels: float, gamma: float, cutoff: float) -> int:
    """Half-width covering ``cutoff`` standard deviations of the Gaussian envelope along its wider direction."""
    return int(math.floor(cutoff * sigma_voxels * max(1.0, 1.0 / gamma) + 0.5))


def orientations(theta: float, delta_theta: float | None) -> list[tuple[float, int]]:
    """(theta, multiplicity) modulo pi: one orientation, or k delta_theta over [0, 2 pi)."""
    if delta_theta is None:
        return [(theta, 1)]
    if delta_theta <= 0:
        raise ValueError(f"Gabor delta_theta must be positive, got {delta_theta}")
    n = int(math.floor(2.0 * math.pi / delta_theta + 1e-9))
    counts: dict[float, int] = {}
    for k in range(n):
        key = round(math.fmod(k * delta_theta, math.pi), 12)
        key = 0.0 if abs(key - math.pi) < 1e-9 else key
        counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items())


def _centred_spectrum(kernel: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """2D FFT of ``kernel`` placed with its centre at index (0, 0) of a ``shape`` grid (circular convolution)."""
    import scipy.fft  # imported here: the settings import every filter module, extract needs none

    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    grid = np.zeros(shape, dtype=np.complex128)
    grid[: kernel.shape[0], : kernel.shape[1]] = kernel
    return scipy.fft.fft2(np.roll(grid, (-ry, -rx), axis=(0, 1)))


def _plane_response(image: np.ndarray, kernels: list[tuple[np.ndarray, int]], plane: tuple[int, int], boundary: str,
                    pooling: str) -> np.ndarray:
    """Pooled moduli of ``image`` convolved slice-wise in ``plane`` with each (kernel, multiplicity).

    Each slab of slices is padded by the kernel radius under the boundary condition and transformed once; every
    orientation then costs one product and one inverse FFT. A circular convolution on the padded grid equals the
    linear one on the unpadded voxels, which are never closer than the kernel radius to the wrap-around."""
    import scipy.fft  # imported here: the settings import every filter module, extract needs none

    ry, rx = kernels[0][0].shape[0] // 2, kernels[0][0].shape[1] // 2
    other = ({0, 1, 2} - set(plane)).pop()
    moved = np.moveaxis(image, (other, plane[0], plane[1]), (0, 1, 2))
    n, h, w = moved.shape
    shape = (scipy.fft.next_fast_len(h + 2 * ry), scipy.fft.next_fast_len(w + 2 * rx))
    spectra = [(_centred_spectrum(kernel, shape), multiplicity) for kernel, multiplicity in kernels]
    out = np.empty(moved.shape, dtype=np.float64)
    step = max(1, _SLAB_VOXELS // (shape[0] * shape[1]))
    for start in range(0, n, step):
        slab = pad(moved[start:start + step], ((0, 0), (ry, ry), (rx, rx)), boundary)
        spectrum = scipy.fft.fft2(slab, s=shape, axes=(1, 2))
        pool = Pool(pooling)
        for kernel_spectrum, multiplicity in spectra:
            response = scipy.fft.ifft2(spectrum * kernel_spectrum, axes=(1, 2))[:, ry:ry + h, rx:rx + w]
            modulus = np.abs(response)
            for _ in range(multiplicity):
                pool.add(modulus)
        out[start:start + step] = pool.value()
    return np.moveaxis(out, (0, 1, 2), (other, plane[0], plane[1]))


def gabor(
    image: np.ndarray, sigma_mm: float, wavelength_mm: float, gamma: float, spacing: tuple[float, float, float],
    boundary: str, *, theta: float = 0.0, delta_theta: float | None = None, pooling: str = "average",
    orthogonal_planes: bool = False, cutoff: float = 4.0,
) -> np.ndarray:
    """Modulus of the Gabor response (IBSI-2), pooled over orientations and optionally over the three planes."""
    if sigma_mm <= 0 or wavelength_mm <= 0 or gamma <= 0:
        raise ValueError("Gabor sigma, lambda and gamma must be positive")
    image = np.asarray(image, dtype=np.float64)
    planes = PLANES if orthogonal_planes else PLANES[:1]

    def plane_response(plane: tuple[int, int]) -> np.ndarray:
        sy, sx = sigma_mm / spacing[plane[0]], sigma_mm / spacing[plane[1]]
        radius = (kernel_radius(sy, gamma, cutoff), kernel_radius(sx, gamma, cutoff))
        wavelength = (wavelength_mm / spacing[plane[0]], wavelength_mm / spacing[plane[1]])
        kernels = [(gabor_kernel((sy, sx), wavelength, gamma, angle, radius), multiplicity)
                   for angle, multiplicity in orientations(theta, delta_theta)]
        return _plane_response(image, kernels, plane, boundary, pooling)

    responses = (plane_response(plane) for plane in planes)  # one plane's response alive at a time
    total = next(responses)
    for response in responses:
        total += response
    return total if len(planes) == 1 else total / len(planes)


def _apply(image: np.ndarray, spacing: Spacing, spec: FilterSpec) -> np.ndarray:
    return gabor(image, float(spec.sigma_mm), float(spec.gabor_lambda_mm), float(spec.gabor_gamma), spacing,
                 spec.boundary_condition, theta=float(spec.gabor_theta), delta_theta=spec.gabor_delta_theta,
                 pooling=spec.pooling or "average", orthogonal_planes=spec.orthogonal_planes,
                 cutoff=spec.cutoff_sigma)


def _support_radius(spec: FilterSpec, spacing: Spacing) -> Radius:
    radius = [0, 0, 0]
    for plane in PLANES if spec.orthogonal_planes else PLANES[:1]:
        for axis in plane:
            r = kernel_radius(float(spec.sigma_mm) / spacing[axis], float(spec.gabor_gamma), spec.cutoff_sigma)
            radius[axis] = max(radius[axis], r)
    return (radius[0], radius[1], radius[2])


def _validate(spec: FilterSpec) -> None:
    require_pooling(spec, pooled=spec.gabor_delta_theta is not None)
    require(spec.sigma_mm is not None and spec.sigma_mm > 0, "sigma_mm must be > 0")
    require(spec.cutoff_sigma > 0, "cutoff_sigma must be > 0")
    require(spec.gabor_lambda_mm is not None and spec.gabor_lambda_mm > 0, "gabor_lambda_mm must be > 0")
    require(spec.gabor_gamma > 0, "gabor_gamma must be > 0")
    require(spec.gabor_delta_theta is None or spec.gabor_delta_theta > 0, "gabor_delta_theta must be > 0")
    require(spec.dimensions == "2D", "Gabor is a 2D (in-plane) filter; use orthogonal_planes for 3D")


FILTER = FilterKind(
    name="gabor",
    parameters={
        "sigma_mm": None,
        "cutoff_sigma": 4.0,
        "gabor_lambda_mm": None,
        "gabor_gamma": 1.0,
        "gabor_theta": 0.0,  # radians, or "pi/3"
        "gabor_delta_theta": None,  # radians: pool over theta = k * delta_theta
        "orthogonal_planes": False,  # average the axial, coronal and sagittal 2D responses
        "pooling": None,  # max | average | min over the orientations (default average)
    },
    apply=_apply,
    support_radius=_support_radius,
    validate=_validate,
)
