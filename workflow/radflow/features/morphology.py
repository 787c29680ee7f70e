"""Morphological features (IBSI family HCUG, 29 features) of an ROI.

Masks (IBSI 3.1): the shape features use the morphological mask: its marching-cubes mesh (``mesh.roi_mesh``) and
its voxel centres. The intensity mask enters where intensities do: the intensity-weighted centre of the centre of
mass shift, the mean intensity of the integrated intensity, and the voxels of Moran's I and Geary's C.

Notation: V and A the mesh volume and area, N_v the voxel count, lambda_major >= lambda_minor >= lambda_least the
eigenvalues of the covariance matrix of the morphological voxel centres (in mm), X_i the intensity of voxel i,
mu their mean over the intensity mask, w_ij = 1 / ||r_i - r_j|| the inverse distance (mm) between voxel centres.

| code | feature                        | formula                                                      |
| RNU0 | Volume (mesh)                  | V = 1/6 |sum_faces a . (b x c)|                              |
| YEKZ | Volume (voxel counting)        | N_v * voxel volume                                           |
| C0JK | Surface area (mesh)            | A = 1/2 sum_faces |(b - a) x (c - a)|                        |
| 2PR5 | Surface to volume ratio        | A / V                                                        |
| SKGS | Compactness 1                  | V / (pi^(1/2) A^(3/2))                                       |
| BQWJ | Compactness 2                  | 36 pi V^2 / A^3                                              |
| KRCK | Spherical disproportion        | A / (36 pi V^2)^(1/3)                                        |
| QCFX | Sphericity                     | (36 pi V^2)^(1/3) / A                                        |
| 25C7 | Asphericity                    | (A^3 / (36 pi V^2))^(1/3) - 1                                |
| KLMA | Centre of mass shift           | || mean_morph(r_i) - sum_int(X_i r_i) / sum_int(X_i) ||      |
| L0JK | Maximum 3D diameter            | max distance between two mesh vertices                       |
| TDIC | Major axis length              | 4 sqrt(lambda_major)                                         |
| P9VJ | Minor axis length              | 4 sqrt(lambda_minor)                                         |
| 7J51 | Least axis length              | 4 sqrt(lambda_least)                                         |
| Q3CK | Elongation                     | sqrt(lambda_minor / lambda_major)                            |
| N17B | Flatness                       | sqrt(lambda_least / lambda_major)                            |
| PBX1 | Volume density (AABB)          | V / volume of the axis-aligned bounding box of the mesh      |
| R59B | Area density (AABB)            | A / area of that box                                         |
| ZH1A | Volume density (OMBB)          | V / volume of the oriented minimum bounding box              |
| IQYR | Area density (OMBB)            | A / area of that box                                         |
| 6BDE | Volume density (AEE)           | V / (4 pi a b c / 3), a, b, c = 2 sqrt(lambda) (the axis lengths / 2) |
| RDD2 | Area density (AEE)             | A / ellipsoid area (IBSI Legendre series, ``mesh.ellipsoid_area``) |
| SWZ1 | Volume density (MVEE)          | V / volume of the minimum-volume enclosing ellipsoid         |
| BRI8 | Area density (MVEE)            | A / its area                                                 |
| R3ER | Volume density (convex hull)   | V / convex hull volume                                       |
| 7T7F | Area density (convex hull)     | A / convex hull area                                         |
| 99N0 | Integrated intensity           | V * mu                                                       |
| N365 | Moran's I index                | N_v / sum w_ij * sum_{i != j} w_ij (X_i - mu)(X_j - mu) / sum (X_i - mu)^2 |
| NPT7 | Geary's C measure              | (N_v - 1) / (2 sum w_ij) * sum_{i != j} w_ij (X_i - X_j)^2 / sum (X_i - mu)^2

The mesh of a non-empty mask is a closed surface with extent along every axis (one voxel gives an octahedron), so
V, A, the convex hull and the bounding boxes and MVEE are never flat; only the AEE can be (a line or a single slice
of voxels has a zero principal axis). The OMBB and MVEE have no IBSI reference value; their accuracy is documented
in ``mesh``. The covariance matrix uses the unbiased (N_v - 1) normalisation: the N_v one would miss the digital
phantom's least axis length (8.48 against 8.54 +/- 0.05).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from radflow.compiled import kernel
from radflow.features import mesh as meshes
from radflow.features import pocketfft
from radflow.features import registry
from radflow.features.base import NO_AGGREGATION, FeatureValue, RoiData
from radflow.settings import Settings

# Moran's I / Geary's C: ROIs of up to this many voxels take the direct pair sum, larger ones the FFT. Measured on
# one core (blobs at 2.5 x 0.8 x 0.8 mm): the two cost the same, 0.1-0.15 ms, at ~220 voxels; at 1 000 voxels the
# pair sum takes 2.7 ms and the FFT 0.25 ms, at 2 600 voxels 15 ms against 0.7 ms.
PAIR_SUM_MAX_VOXELS = 250
# Largest zero-padded FFT grid for Moran's I / Geary's C (cells); larger, sparse ROI boxes take the subsample
# estimate. ``fft_pair_sums`` holds ~5 bytes per cell at its peak (measured: 152 MB, 4.85 bytes a cell, at the
# 1 M-voxel benchmark ROI, box 70 x 222 x 250 at 0.8 x 0.8 x 2.5 mm, grid 31 M cells), so ~330 MB here.
FFT_MAX_CELLS = 1 << 26
# Bytes of the three spectra ``fft_pair_sums`` transforms and sums at a time (a few last-axis frequency planes):
# small enough to stay in cache, large enough that a small ROI needs few FFT calls (measured best at 3-5 MB).
FFT_CHUNK_BYTES = 4 << 20
# Grids up to this many cells take ``slab_pair_sums`` (double precision, 2D transforms, plane pairs summed
# directly), larger ones ``fft_pair_sums`` (single precision, 3D transforms): the plane pairs grow with the square of
# the planes. Measured on one core: the slab as fast or faster up to ~13 k cells (a 1 000-voxel ROI: 0.25 ms), the
# 3D transforms faster from ~23 k cells (a 1 700-voxel ROI: 0.53 against 0.77 ms; 12 k voxels: 2.3 against 7 ms).
SLAB_MAX_CELLS = 1 << 14


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """All 29 HCUG features of ``roi`` (shape on the morphological mask, intensities on the intensity mask)."""
    surface = meshes.roi_mesh(roi.morph_mask, roi.spacing)
    shape = VoxelShape.of(roi.morph_mask, roi.spacing)
    values: dict[str, float | str] = {}
    values.update(size_and_sphericity(surface, shape.n_voxels * roi.voxel_volume))
    values["KLMA"] = centre_of_mass_shift(roi, shape.centroid)
    values["L0JK"] = surface.hull.max_diameter
    values.update(principal_axes(shape.eigenvalues))
    values.update(densities(surface, shape.eigenvalues))
    values["99N0"] = integrated_intensity(surface.volume, roi)
    opts = settings["morphology"]
    values.update(spatial_autocorrelation(roi.image, roi.int_mask, roi.spacing,
                                          int(opts["spatial_autocorrelation_exact_max_voxels"]), int(opts["seed"]),
                                          values=roi.intensities))
    return [_feature(code, values[code]) for code in registry.codes_of("morphology")]


def _feature(code: str, value: float | str) -> FeatureValue:
    """A value, or NaN with the reason when the computation returned a string."""
    if isinstance(value, str):
        return FeatureValue.undefined(code, NO_AGGREGATION, value)
    return FeatureValue(code, NO_AGGREGATION, float(value))


# ---------------------------------------------------------------------------------------------------------------------
# Size and sphericity (mesh)


def size_and_sphericity(surface: meshes.Mesh, voxel_volume_total: float) -> dict[str, float]:
    """RNU0, YEKZ, C0JK and the ratios of mesh volume V and area A (table in the module docstring)."""
    v, a = surface.volume, surface.area
    sphere = (36.0 * math.pi * v * v) ** (1.0 / 3.0)  # area of the sphere of volume V
    return {
        "RNU0": v,
        "YEKZ": voxel_volume_total,
        "C0JK": a,
        "2PR5": a / v,
        "SKGS": v / (math.sqrt(math.pi) * a**1.5),
        "BQWJ": 36.0 * math.pi * v * v / a**3,
        "KRCK": a / sphere,
        "QCFX": sphere / a,
        "25C7": a / sphere - 1.0,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Voxel-centre statistics: centroid, principal axes, centre of mass shift


@dataclass(frozen=True)
class VoxelShape:
    """Voxel count, centroid (mm, array frame) and covariance eigenvalues (ascending, mm^2) of a mask's voxel
    centres."""

    n_voxels: int
    centroid: np.ndarray
    eigenvalues: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray, spacing: tuple[float, float, float]) -> "VoxelShape":
        count, first, second = _index_moments(mask)
        scale = np.asarray(spacing, dtype=np.float64)
        mean = first / count
        if count > 1:
            # unbiased covariance, in index units about the centroid, then scaled to mm
            cov = (second - count * np.outer(mean, mean)) / (count - 1)
            cov = cov * np.outer(scale, scale)
            eigenvalues = np.clip(np.linalg.eigvalsh(cov), 0.0, None)
        else:
            eigenvalues = np.zeros(3)
        return cls(int(count), mean * scale, eigenvalues)


@kernel()
def _index_moments(mask: np.ndarray):
    """Voxel count, sum of index vectors and sum of their outer products over ``mask`` (indices about the array centre,
    which keeps the second moments small and the covariance free of cancellation)."""
    nz, ny, nx = mask.shape
    oz, oy, ox = (nz - 1) * 0.5, (ny - 1) * 0.5, (nx - 1) * 0.5
    count = 0
    first = np.zeros(3)
    second = np.zeros((3, 3))
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    p0, p1, p2 = z - oz, y - oy, x - ox
                    count += 1
                    first[0] += p0
                    first[1] += p1
                    first[2] += p2
                    second[0, 0] += p0 * p0
                    second[0, 1] += p0 * p1
                    second[0, 2] += p0 * p2
                    second[1, 1] += p1 * p1
                    second[1, 2] += p1 * p2
                    second[2, 2] += p2 * p2
    second[1, 0], second[2, 0], second[2, 1] = second[0, 1], second[0, 2], second[1, 2]
    # back to plain array indices: sum(p + o) and sum((p + o)(p + o)^T), element by element (np.outer and array
    # arithmetic would compile their own implementations, ~3 s, into the kernel)
    origin = (oz, oy, ox)
    second_abs = np.empty((3, 3))
    first_abs = np.empty(3)
    for a in range(3):
        for b in range(3):
            second_abs[a, b] = (second[a, b] + first[a] * origin[b] + origin[a] * first[b]
                                + count * (origin[a] * origin[b]))
        first_abs[a] = first[a] + count * origin[a]
    return count, first_abs, second_abs


@kernel()
def _weighted_index_sum(mask: np.ndarray, image: np.ndarray):
    """sum(X_i) and sum(X_i * index_i) over ``mask``."""
    total = 0.0
    weighted = np.zeros(3)
    nz, ny, nx = mask.shape
    for z in range(nz):
        for y in range(ny):
            for x in range(nx):
                if mask[z, y, x]:
                    v = image[z, y, x]
                    total += v
                    weighted[0] += v * z
                    weighted[1] += v * y
                    weighted[2] += v * x
    return total, weighted


def centre_of_mass_shift(roi: RoiData, geometric_centre: np.ndarray) -> float | str:
    """Centre of mass shift, IBSI KLMA: distance (mm) between the centroid of the morphological mask's voxel centres
    and the intensity-weighted centroid sum(X_i r_i) / sum(X_i) of the intensity mask's voxels."""
    total, weighted = _weighted_index_sum(roi.int_mask, roi.image)
    if total == 0.0:
        return "the intensities of the intensity mask sum to zero: no intensity-weighted centre"
    intensity_centre = weighted / total * np.asarray(roi.spacing)
    return float(np.linalg.norm(geometric_centre - intensity_centre))


def principal_axes(eigenvalues: np.ndarray) -> dict[str, float | str]:
    """TDIC, P9VJ, 7J51 (4 sqrt(lambda)) and elongation Q3CK, flatness N17B (sqrt of eigenvalue ratios)."""
    least, minor, major = eigenvalues
    flat = "the ROI has a single voxel: no principal axes"
    return {
        "TDIC": 4.0 * math.sqrt(major),
        "P9VJ": 4.0 * math.sqrt(minor),
        "7J51": 4.0 * math.sqrt(least),
        "Q3CK": math.sqrt(minor / major) if major > 0.0 else flat,
        "N17B": math.sqrt(least / major) if major > 0.0 else flat,
    }


# ---------------------------------------------------------------------------------------------------------------------
# Volume and area densities


def densities(surface: meshes.Mesh, eigenvalues: np.ndarray) -> dict[str, float | str]:
    """Volume and area densities of the mesh against enclosing shapes: AABB, OMBB, AEE, MVEE, convex hull."""
    v, a = surface.volume, surface.area
    hull = surface.hull
    aabb = np.ptp(surface.vertices, axis=0)
    ombb = hull.min_oriented_box
    mvee = hull.min_enclosing_ellipsoid
    out: dict[str, float | str] = {
        "PBX1": v / float(np.prod(aabb)),
        "R59B": a / _box_area(aabb),
        "ZH1A": v / float(np.prod(ombb)),
        "IQYR": a / _box_area(ombb),
        "SWZ1": v / meshes.ellipsoid_volume(mvee),
        "BRI8": a / meshes.ellipsoid_area(mvee),
        "R3ER": v / hull.volume,
        "7T7F": a / hull.area,
    }
    aee = 2.0 * np.sqrt(eigenvalues[::-1])  # semi-axes: half the major, minor and least axis lengths
    if aee[2] > 0.0:
        out["6BDE"] = v / meshes.ellipsoid_volume(aee)
        out["RDD2"] = a / meshes.ellipsoid_area(aee)
    else:
        out["6BDE"] = out["RDD2"] = "the approximate enclosing ellipsoid is flat (a principal axis has zero length)"
    return out


def _box_area(edges: np.ndarray) -> float:
    x, y, z = edges
    return 2.0 * (x * y + y * z + x * z)


# ---------------------------------------------------------------------------------------------------------------------
# Intensity-based morphology


def integrated_intensity(mesh_volume: float, roi: RoiData) -> float:
    """Integrated intensity, IBSI 99N0: V * mu, mu the mean intensity of the intensity mask."""
    return mesh_volume * float(roi.intensities.mean())


def spatial_autocorrelation(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float],
                            exact_max_voxels: int, seed: int, values: np.ndarray | None = None) -> dict[str, float | str]:
    """Moran's I (IBSI N365) and Geary's C (IBSI NPT7) over the voxels of ``mask``, inverse-distance weights (mm).

    Both need the sums over all ordered voxel pairs i != j of w_ij, w_ij z_i z_j and w_ij (z_i - z_j)^2 (z = X - mu),
    O(N_v^2) pairs. They are computed exactly by one of:
      * the direct pair sum (numba, no pair matrix), for up to PAIR_SUM_MAX_VOXELS voxels;
      * FFT correlation: on a regular grid w_ij = K(r_i - r_j) with K(d) = 1/||d|| (K(0) = 0), so each pair sum is
        a quadratic form sum_i f_i (K * g)_i = (1/N) sum_k K^(k) conj(F(k)) G(k) (Parseval) over a zero-padded grid
        of at least 2n - 1 cells per axis (no wrap-around); the kernel spectrum K^ is real (K is even) and comes from
        a DCT-I of one octant. Of the three fields (z, z^2 and the mask):
          - up to SLAB_MAX_CELLS grid cells (``slab_pair_sums``), in double precision, transformed along two
            axes only; along the shortest axis the form is summed directly over the plane pairs (a few dozen at a
            small ROI), which needs neither that axis' padding nor its transforms. Exact to rounding: sum w within
            2e-15 of a compensated direct sum on an 8 k-voxel blob (the vectorised pair sum: 2e-11);
          - larger grids (``fft_pair_sums``): three real 3D FFTs, O(M log M) for M grid cells, in single precision:
            the results differ from the double-precision pair sum by rounding only (< 1e-7 relative in the tests
            and on IBSI configuration A).
    When the FFT grid would exceed FFT_MAX_CELLS cells (huge, sparse ROI boxes) and the ROI has more than
    ``exact_max_voxels`` voxels, both are estimated as the exact values of a seeded uniform random subsample of
    ``exact_max_voxels`` voxels (ratio of U-statistics, consistent but noisy). Measured on IBSI CT configuration A
    (114 596 voxels, seeds 0-4): with 20 000 voxels |relative error| up to 4.1 % for Moran's I and 0.3 % for Geary's
    C, with 5 000 up to 8.8 % and 0.6 % — Moran's I would miss the IBSI tolerance (0.6 %), which is why the exact FFT
    is used whenever it fits.
    """
    values = image[mask] if values is None else values  # ``values``: image[mask], when the caller has it
    n = values.size
    if n < 2:
        reason = "the intensity mask has a single voxel: no voxel pairs"
        return {"N365": reason, "NPT7": reason}
    if values.min() == values.max():  # tested exactly: X - mean(X) need not be exactly 0 then
        reason = "the intensity mask has a constant intensity: zero variance"
        return {"N365": reason, "NPT7": reason}
    deviations = values - values.mean()
    box = meshes.bounding_box(mask)
    grid = _fft_grid(tuple(s.stop - s.start for s in box))
    if n <= PAIR_SUM_MAX_VOXELS or (math.prod(grid) > FFT_MAX_CELLS and n <= exact_max_voxels):
        sums = pair_sums(np.ascontiguousarray(np.argwhere(mask) * np.asarray(spacing)), deviations)
    elif math.prod(grid) <= min(SLAB_MAX_CELLS, FFT_MAX_CELLS):
        sums = slab_pair_sums(deviations, mask[box], spacing)
    elif math.prod(grid) <= FFT_MAX_CELLS:
        sums = fft_pair_sums(deviations, mask[box], spacing, grid)
    else:
        rng = np.random.default_rng(seed)
        keep = np.sort(rng.choice(n, size=exact_max_voxels, replace=False))
        sample = values[keep]
        if sample.min() == sample.max():
            reason = "the subsampled intensities are constant: zero variance"
            return {"N365": reason, "NPT7": reason}
        deviations = sample - sample.mean()
        n = exact_max_voxels
        sums = pair_sums(np.argwhere(mask)[keep] * np.asarray(spacing), deviations)
    return _moran_geary(n, float(deviations @ deviations), *sums)


def _moran_geary(n: int, sum_sq: float, sum_w: float, sum_wzz: float, sum_wdiff: float) -> dict[str, float]:
    return {
        "N365": n / sum_w * sum_wzz / sum_sq,
        "NPT7": (n - 1) / (2.0 * sum_w) * sum_wdiff / sum_sq,
    }


# reassociation lets the pair loop vectorise; no approximate reciprocal or square root
@kernel(fastmath={"reassoc", "contract", "nsz"})
def pair_sums(coords: np.ndarray, z: np.ndarray) -> tuple[float, float, float]:
    """sum_{i != j} w_ij, sum w_ij z_i z_j and sum w_ij (z_i - z_j)^2 over ordered pairs, w_ij = 1/||r_i - r_j||."""
    n = z.shape[0]
    sw = 0.0
    szz = 0.0
    sdd = 0.0
    for i in range(n):
        c0, c1, c2, zi = coords[i, 0], coords[i, 1], coords[i, 2], z[i]
        for j in range(i + 1, n):
            d0, d1, d2 = coords[j, 0] - c0, coords[j, 1] - c1, coords[j, 2] - c2
            w = 1.0 / math.sqrt(d0 * d0 + d1 * d1 + d2 * d2)
            zj = z[j]
            sw += w
            szz += w * zi * zj
            sdd += w * (zi - zj) * (zi - zj)
    return 2.0 * sw, 2.0 * szz, 2.0 * sdd


def _fft_grid(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Per axis the FFT length for linear, not circular, correlation (``_even_fast_len`` of 2n - 1). Axes 0 and 1
    take complex FFTs (11-smooth lengths are fast), the last axis the real FFT (5-smooth)."""
    return tuple(_even_fast_len(2 * n - 1, real=axis == len(shape) - 1) for axis, n in enumerate(shape))


def _even_fast_len(n: int, real: bool) -> int:
    """The smallest even ``next_fast_len`` >= n: even so that the kernel's spectrum is a DCT-I of its first half."""
    length = next_fast_len(n, real=real)
    while length % 2:
        length = next_fast_len(length + 1, real=real)
    return length


def next_fast_len(n: int, real: bool) -> int:
    """The smallest length >= n whose prime factors are all in 2, 3, 5 (real FFT) or 2, 3, 5, 7, 11 (complex FFT):
    the lengths ``scipy.fft.next_fast_len`` picks, here so that extraction need not import scipy.fft (see
    ``pocketfft``)."""
    primes = (2, 3, 5) if real else (2, 3, 5, 7, 11)
    length = max(int(n), 1)
    while True:
        rest = length
        for p in primes:
            while rest % p == 0:
                rest //= p
        if rest == 1:
            return length
        length += 1


def inverse_distance_spectrum(grid: tuple[int, int, int], spacing: tuple[float, float, float]) -> np.ndarray:
    """One octant, k_a = 0 .. N_a / 2 on every axis, of the DFT of the periodic kernel K(d) = 1/||d|| (mm), K(0) = 0,
    on ``grid``, axes ordered (2, 0, 1) as ``fft_pair_sums`` walks the spectrum. The DFT is real and even since K is
    even, and the DFT of an even sequence of even length N is the DCT-I of its first N/2 + 1 samples, axis by axis:
    so only one octant of the kernel is built and transformed (in single precision, like the data transforms)."""
    half = tuple(n // 2 + 1 for n in grid)
    octant = _inverse_distance_octant(half[2], half[0], half[1], *(float(v) for v in spacing)).astype(np.float32)
    pocketfft.dct1_in_place(octant, axes=(0, 1, 2))
    return octant


def slab_kernel_spectrum(planes: int, n1: int, n2: int, spacing: tuple[float, float, float]) -> np.ndarray:
    """[k_2, dz, k_1] -> the 2D DFT over (axis 1, axis 2) of the kernel K(d) = 1/||d|| (mm) at axis-0 offset
    dz = 0 .. planes - 1, periodic on the grid n1 x n2 (even lengths), for k_a = 0 .. N_a / 2: real and even, so the
    DCT-I of one quadrant (see ``inverse_distance_spectrum``), in double precision. Not cached: the grid follows
    the ROI's box, which seldom repeats in a cohort (a cache would only flatter a benchmark that extracts one ROI
    again and again)."""
    octant = _inverse_distance_octant(n2 // 2 + 1, planes, n1 // 2 + 1, *spacing)  # [x, z, y]
    pocketfft.dct1_in_place(octant, axes=(0, 2))
    return octant


@kernel(error_model="numpy")  # 1/0 at d = 0 is overwritten, not an exception
def _inverse_distance_octant(nx: int, nz: int, ny: int, sz: float, sy: float, sx: float) -> np.ndarray:
    """[x, z, y] -> 1/||d|| at the offsets d = (z s_z, y s_y, x s_x) mm, 0 at d = 0."""
    out = np.empty((nx, nz, ny))
    for x in range(nx):
        dx2 = (x * sx) ** 2
        for z in range(nz):
            dz2 = (z * sz) ** 2
            for y in range(ny):
                out[x, z, y] = 1.0 / math.sqrt(dz2 + (y * sy) ** 2 + dx2)
    out[0, 0, 0] = 0.0
    return out


def slab_pair_sums(deviations: np.ndarray, mask: np.ndarray,
                   spacing: tuple[float, float, float]) -> tuple[float, float, float]:
    """The three pair sums of ``pair_sums`` (see ``fft_pair_sums`` for S(f, g)) for a small grid, in double
    precision: FFT correlation along two axes, a direct sum along the third.

    The axes are reordered so that the one with the fewest cells (the slice axis of a thick-slice CT) comes first;
    each plane p of a field f is transformed in 2D (real FFT along the last axis, FFT along the middle one, zero
    padded to at least 2n - 1), F_p(k), and with the 2D kernel spectrum at plane offset dz, K^_dz(k):
    S(f, g) = (1 / N_1 N_2) sum_k sum_{p, p'} K^_|p - p'|(k) Re(F_p(k) conj(G_p'(k))). The plane pairs cost
    O(planes^2) per frequency against an FFT's O(N_0 log N_0), but they need no zero padding along that axis, no
    third transform pass and no DCT along it: on small grids as fast as the 3D transforms, and exact to rounding
    rather than to float32 (see SLAB_MAX_CELLS).
    """
    order = np.argsort(mask.shape, kind="stable")  # the shortest axis first, the others in their order
    planes, b1, b2 = (mask.shape[a] for a in order)
    n1 = _even_fast_len(2 * b1 - 1, real=False)
    n2 = _even_fast_len(2 * b2 - 1, real=True)
    fields = np.zeros((3, planes, b1, n2))  # [field (M, Z, Q), plane, axis 1, axis 2 zero padded]
    in_mask_order = fields[:, :, :, :b2].transpose(0, *(np.argsort(order) + 1))
    in_mask_order[0][mask] = 1.0
    in_mask_order[1][mask] = deviations
    in_mask_order[2][mask] = deviations * deviations
    halves = pocketfft.rfft(fields, axis=3)
    # the second transform runs on each frequency row laid out in the order the plane-pair sums read it:
    # [field, plane, k_2, k_1]
    spectra = np.zeros((3, planes, n2 // 2 + 1, n1), dtype=np.complex128)
    spectra[..., :b1] = halves.transpose(0, 1, 3, 2)
    pocketfft.fft_in_place(spectra, axis=3)
    sums = np.zeros(3)
    spacing = tuple(float(spacing[a]) for a in order)
    _add_plane_pair_forms(slab_kernel_spectrum(planes, n1, n2, spacing), spectra, sums)
    sum_w, sum_zz, sum_z2m = sums / (n1 * n2)
    return sum_w, sum_zz, 2.0 * (sum_z2m - sum_zz)


# reassociation lets the lag sums vectorise (a fixed order all the same: same input, same bits)
@kernel(fastmath={"reassoc"})
def _add_plane_pair_forms(kernel: np.ndarray, spectra: np.ndarray, sums: np.ndarray) -> None:
    """Adds to ``sums`` sum_k sum_{p, p'} K^_|p - p'|(k) Re(F_p(k) conj(G_p'(k))) for (F, G) = (M, M), (Z, Z),
    (Q, M) over the full 2D spectrum, from the fields' half spectra ``spectra`` [field (M, Z, Q), plane, k_2, k_1]
    and ``kernel`` [k_2, dz, k_1 <= N_1 / 2] (``slab_kernel_spectrum``): K^ is even in k_1, and the columns
    k_2 = 1 .. N_2/2 - 1 stand for themselves and their conjugate mirror, so they count twice. Per frequency the
    plane pairs are summed by lag dz = p' - p, both orders of a pair at once."""
    planes, n2, n1 = spectra.shape[1], spectra.shape[2], spectra.shape[3]
    half = n1 // 2
    mr, mi = np.empty(planes), np.empty(planes)
    zr, zi = np.empty(planes), np.empty(planes)
    qr, qi = np.empty(planes), np.empty(planes)
    for c in range(n2):
        weight = 1.0 if (c == 0 or c == n2 - 1) else 2.0
        sw = 0.0
        szz = 0.0
        sqm = 0.0
        for b in range(n1):
            kernel_row = kernel[c, :, b if b <= half else n1 - b]
            for p in range(planes):
                mr[p], mi[p] = spectra[0, p, c, b].real, spectra[0, p, c, b].imag
                zr[p], zi[p] = spectra[1, p, c, b].real, spectra[1, p, c, b].imag
                qr[p], qi[p] = spectra[2, p, c, b].real, spectra[2, p, c, b].imag
            lag_w = 0.0
            lag_zz = 0.0
            lag_qm = 0.0
            for p in range(planes):  # lag 0
                lag_w += mr[p] * mr[p] + mi[p] * mi[p]
                lag_zz += zr[p] * zr[p] + zi[p] * zi[p]
                lag_qm += qr[p] * mr[p] + qi[p] * mi[p]
            sw += kernel_row[0] * lag_w
            szz += kernel_row[0] * lag_zz
            sqm += kernel_row[0] * lag_qm
            for d in range(1, planes):
                lag_w = 0.0
                lag_zz = 0.0
                lag_qm = 0.0
                for p in range(planes - d):
                    lag_w += mr[p] * mr[p + d] + mi[p] * mi[p + d]
                    lag_zz += zr[p] * zr[p + d] + zi[p] * zi[p + d]
                    lag_qm += (qr[p] * mr[p + d] + qi[p] * mi[p + d]) + (qr[p + d] * mr[p] + qi[p + d] * mi[p])
                sw += kernel_row[d] * (2.0 * lag_w)
                szz += kernel_row[d] * (2.0 * lag_zz)
                sqm += kernel_row[d] * lag_qm
        sums[0] += weight * sw
        sums[1] += weight * szz
        sums[2] += weight * sqm


def fft_pair_sums(deviations: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float],
                  grid: tuple[int, int, int]) -> tuple[float, float, float]:
    """The three pair sums of ``pair_sums`` by FFT correlation (see ``spatial_autocorrelation``), for the values
    ``deviations`` of the voxels of ``mask`` (in its C order).

    With S(f, g) = sum_{i != j} w_ij f_i g_j: sum w = S(m, m), sum w z z = S(z, z) and
    sum w (z_i - z_j)^2 = 2 S(z^2, m) - 2 S(z, z), m the mask indicator. The transforms are single precision
    (3x faster than double) and the spectral sums double: Moran's I and Geary's C then differ from the double
    precision pair sums by < 1e-7 relative (measured in the tests and on IBSI configuration A).

    Memory: only the last axis is transformed for the whole array (the real FFT); the other two axes are
    transformed a few last-axis frequencies at a time, in one zero-padded buffer per field, and each frequency
    plane's contribution to the three sums is added at once. The zero-padded spectra are thus never held whole
    (8 bytes per grid cell each, 250 MB apiece for the 1 M-voxel benchmark ROI), which spares the page faults of
    touching that memory and keeps each plane in cache between its transforms and its sums. The fields are written
    straight into arrays of the padded length, and the frequency planes straight into the padded buffers, so no
    transform pads by a copy of its own (``scipy.fft``'s padding: 0.09 s of a 1 M-voxel ROI).
    """
    kernel = inverse_distance_spectrum(grid, spacing)
    n0, n1, n2 = grid
    b0, b1, b2 = mask.shape
    # the three fields' real FFTs along the last axis, stored [field, c, box 0, box 1] so that each chunk of
    # frequency planes c below is one contiguous block; one padded field array serves all three, as each writes the
    # same voxels
    halves = np.empty((3, n2 // 2 + 1, b0, b1), dtype=np.complex64)
    field = np.zeros((b0, b1, n2), dtype=np.float32)
    for half, values in zip(halves, (np.float32(1.0), deviations, deviations * deviations)):
        field[:, :, :b2][mask] = values
        pocketfft.rfft(field, axis=2, out=half.transpose(1, 2, 0))
    sums = np.zeros(3)
    planes = max(1, FFT_CHUNK_BYTES // (3 * np.dtype(np.complex64).itemsize * n0 * n1))
    buffers = np.empty((3, min(planes, halves.shape[1]), n0, n1), dtype=np.complex64)
    for first in range(0, halves.shape[1], planes):
        count = min(planes, halves.shape[1] - first)
        spectra = buffers[:, :count]
        spectra[:, :, b0:] = 0
        spectra[:, :, :b0, b1:] = 0
        spectra[:, :, :b0, :b1] = halves[:, first:first + count]
        for spectrum in spectra:
            pocketfft.fft_in_place(spectrum[:, :b0], axis=2)
            pocketfft.fft_in_place(spectrum, axis=1)
        _add_spectral_forms(kernel, *spectra, first, sums)
    sum_w, sum_zz, sum_z2m = sums / math.prod(grid)
    return sum_w, sum_zz, 2.0 * (sum_z2m - sum_zz)


# reassociation lets the three sums vectorise (a fixed order all the same: same input, same bits)
@kernel(fastmath={"reassoc"})
def _add_spectral_forms(octant: np.ndarray, m: np.ndarray, z: np.ndarray, q: np.ndarray, first: int,
                        sums: np.ndarray) -> None:
    """Adds to ``sums`` the planes first .. first + len(m) - 1 (last-axis frequencies c) of
    sum_k K^(k) |M(k)|^2, sum_k K^(k) |Z(k)|^2 and sum_k K^(k) Re(conj(Q(k)) M(k)) over the full spectrum, from
    real-FFT halves indexed [c, k_0, k_1] and the kernel's octant: K^ is even, so
    K^(k_0, k_1, c) = octant[c, min(k_0, N_0 - k_0), min(k_1, N_1 - k_1)]; planes c = 1 .. N/2 - 1 stand for
    themselves and their conjugate mirror, so they count twice."""
    n_planes, n0, n1 = m.shape
    last = octant.shape[0] - 1
    half = n1 // 2
    for p in range(n_planes):
        c = first + p
        sw = 0.0
        szz = 0.0
        sqm = 0.0
        for a in range(n0):
            kernel_row = octant[c, min(a, n0 - a)]
            m_row, z_row, q_row = m[p, a], z[p, a], q[p, a]
            for b in range(n1):
                k = np.float64(kernel_row[b if b <= half else n1 - b])
                mr, mi = np.float64(m_row[b].real), np.float64(m_row[b].imag)
                zr, zi = np.float64(z_row[b].real), np.float64(z_row[b].imag)
                qr, qi = np.float64(q_row[b].real), np.float64(q_row[b].imag)
                sw += k * (mr * mr + mi * mi)
                szz += k * (zr * zr + zi * zi)
                sqm += k * (qr * mr + qi * mi)
        weight = 1.0 if (c == 0 or c == last) else 2.0
        sums[0] += weight * sw
        sums[1] += weight * szz
        sums[2] += weight * sqm
