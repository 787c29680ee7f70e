"""Local intensity features (IBSI family 9ST6): the local (VJGA) and global (0F91) intensity peaks.

IBSI 3.2: the mean intensity in a sphere of 1 cm^3 (radius r = (3 V / 4 pi)^(1/3) = 6.2035 mm) centred on a voxel,
over every image voxel whose centre lies within the sphere (distance <= r) — the whole image, not only the ROI
(``RoiData.image`` is cropped with a margin of r for this), clipped at the image border.

| code | feature               | definition                                                                          |
| VJGA | Local intensity peak  | the sphere mean centred on the intensity-mask voxel of maximum intensity (the       |
|      |                       | highest such mean when several voxels share the maximum)                           |
| 0F91 | Global intensity peak | the highest sphere mean over all voxels of the intensity mask                       |

Method: a sphere on a voxel grid is a stack of x-runs, one per (dz, dy) offset with half-width a(dz, dy); with
prefix sums along x each run costs two look-ups, so a sphere mean costs O(runs) (some 60 for 1 cm^3 at
0.8 x 0.8 x 2.5 mm, against ~600 voxels) and no voxel scans the image.
"""
from __future__ import annotations

import functools
import math

import numpy as np

from radflow.compiled import kernel
from radflow.features.base import NO_AGGREGATION, FeatureValue, RoiData
from radflow.imaging.preprocess import local_intensity_radius_mm
from radflow.settings import Settings


NON_FINITE_REASON = "the image holds non-finite intensities (NaN or infinite) within the sphere's reach of the ROI"


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """VJGA and 0F91 of ``roi``: sphere means over the whole (cropped) image, centred on intensity-mask voxels.
    Undefined when the image around the ROI has voxels without a finite intensity: a sphere mean over them has no
    value, and one that skipped them would not be the IBSI mean."""
    if not np.isfinite(roi.image).all():
        return [FeatureValue.undefined(code, NO_AGGREGATION, NON_FINITE_REASON) for code in ("VJGA", "0F91")]
    groups = sphere_groups(local_intensity_radius_mm(settings), tuple(float(s) for s in roi.spacing))
    peak = float(roi.intensities.max())
    local, global_ = _peaks(roi.image, roi.int_mask, groups, peak)
    return [FeatureValue("VJGA", NO_AGGREGATION, local), FeatureValue("0F91", NO_AGGREGATION, global_)]


@functools.lru_cache(maxsize=8)
def sphere_groups(radius: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """``mirrored_groups(sphere_runs(radius, spacing))``, cached: building the stencil in Python costs ~0.2 ms, a
    third of the family at a 5 k-voxel ROI, and it depends on the radius and the voxel spacing only, which the ROIs
    of a scan (and a cohort on one grid) share. Not to be written to."""
    return mirrored_groups(sphere_runs(radius, spacing))


def mirrored_groups(runs: np.ndarray) -> np.ndarray:
    """The runs of ``sphere_runs`` grouped by mirror symmetry: rows (a, n, dz_1, dy_1, ..., dz_4, dy_4) for the n
    (1, 2 or 4) runs (+-dz, +-dy) of half-width a, unused members (0, 0) with n < 4. A sphere is symmetric, so the
    kernel adds up to four runs per pass over a row's centres."""
    groups: dict[tuple[int, int], list[int]] = {}  # (|dz|, |dy|) -> [a, n, dz_1, dy_1, ...], in order of appearance
    for dz, dy, a in runs.tolist():
        group = groups.setdefault((abs(dz), abs(dy)), [a, 0])
        group[0] = a
        group[1] += 1
        group += (dz, dy)
    return np.array([group + [0, 0] * (4 - group[1]) for group in groups.values()], dtype=np.int64).reshape(-1, 10)


def sphere_runs(radius: float, spacing: tuple[float, float, float]) -> np.ndarray:
    """The sphere of ``radius`` (mm) about a voxel centre as x-runs: rows (dz, dy, a) meaning the voxels
    (dz, dy, -a .. a), for every (dz, dy) whose run is not empty. A voxel belongs when
    (dz s_z)^2 + (dy s_y)^2 + (dx s_x)^2 <= r^2, the same expression a brute-force check would use.

    Each half-width starts from its square-root estimate and is settled by that exact test (it holds for dx = 0 .. a
    and fails beyond: the rounded sum grows with dx), two or three tests per run instead of one per voxel: the
    stencil is rebuilt for every ROI, and testing voxel by voxel in Python cost ~0.1 ms, a fifth of the family."""
    sz, sy, sx = spacing
    r2 = radius * radius
    rows = []
    for dz in range(-int(radius // sz), int(radius // sz) + 1):
        for dy in range(-int(radius // sy), int(radius // sy) + 1):
            base = (dz * sz) ** 2 + (dy * sy) ** 2
            a = int(math.sqrt(max(r2 - base, 0.0)) / sx)
            while base + ((a + 1) * sx) ** 2 <= r2:
                a += 1
            while a >= 0 and not base + (a * sx) ** 2 <= r2:
                a -= 1
            if a >= 0:
                rows.append((dz, dy, a))
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


@kernel()
def _plane_prefix_sums(image: np.ndarray, z: int, out: np.ndarray) -> None:
    """out[y, x] = sum of image[z, y, :x] (a leading zero column), so a run x0..x1 sums to out[y, x1 + 1] -
    out[y, x0]."""
    ny, nx = image.shape[1], image.shape[2]
    for y in range(ny):
        out[y, 0] = 0.0
        acc = 0.0
        for x in range(nx):
            acc += image[z, y, x]
            out[y, x + 1] = acc


@kernel()
def _peaks(image: np.ndarray, mask: np.ndarray, groups: np.ndarray, peak: float):
    """(local peak, global peak): the highest sphere mean among mask voxels of intensity ``peak``, and among all
    mask voxels. Runs (``mirrored_groups``) are clipped at the array border (the image border, or beyond the
    sphere's reach).

    Works row by row: for each image row (z, y) the sphere sums of the row's span of mask voxels are accumulated
    group by group (up to four mirrored runs of one half-width) in contiguous passes over x, which the compiler
    vectorises. The x-prefix sums of the planes a sphere reaches (z - reach .. z + reach) are kept in a ring of
    2 reach + 1 planes, computed as z advances: a few MB that stay in cache, where the whole image's prefix sums
    would be as large as the image. A run that leaves the array in z or y reads a row of zeros. The voxel count of
    a sphere is the same for every centre of a row except where a run is clipped at the x border: only those
    centres keep a per-voxel tally of the voxels they miss."""
    nz, ny, nx = mask.shape
    reach = 0
    for g in range(groups.shape[0]):
        reach = max(reach, abs(groups[g, 2]))
    ring = 2 * reach + 1
    prefix = np.empty((ring, ny, nx + 1))
    zero_row = np.zeros(nx + 1)
    for zz in range(min(reach, nz)):
        _plane_prefix_sums(image, zz, prefix[zz % ring])
    total = np.empty(nx)
    missing = np.empty(nx)
    flat = prefix.reshape(ring * ny, nx + 1)  # row (plane % ring) * ny + y
    plane_row = np.empty(4, dtype=np.int64)
    best_local = -np.inf
    best_global = -np.inf
    for z in range(nz):
        if z + reach < nz:
            _plane_prefix_sums(image, z + reach, prefix[(z + reach) % ring])
        for y in range(ny):
            first, last = nx, -1
            for x in range(nx):
                if mask[z, y, x]:
                    first = min(first, x)
                    last = x
            if last < 0:
                continue
            total[first : last + 1] = 0.0
            missing[first : last + 1] = 0.0
            full = 0.0  # voxels of the sphere's runs that stay inside the array in z and y
            for g in range(groups.shape[0]):
                a = groups[g, 0]
                inside = 0
                for m in range(groups[g, 1]):
                    zz = z + groups[g, 2 + 2 * m]
                    yy = y + groups[g, 3 + 2 * m]
                    if 0 <= zz < nz and 0 <= yy < ny:
                        plane_row[inside] = (zz % ring) * ny + yy
                        inside += 1
                if inside == 0:
                    continue
                full += inside * (2 * a + 1)
                r0 = flat[plane_row[0]]
                r1 = flat[plane_row[1]] if inside > 1 else zero_row
                r2 = flat[plane_row[2]] if inside > 2 else zero_row
                r3 = flat[plane_row[3]] if inside > 3 else zero_row
                inner_first = max(first, a)
                inner_last = min(last, nx - 1 - a)
                for x in range(first, min(inner_first, last + 1)):  # runs clipped on the left
                    x1 = min(x + a, nx - 1)
                    total[x] += (r0[x1 + 1] - r0[0] + r1[x1 + 1] - r1[0]) + (r2[x1 + 1] - r2[0] + r3[x1 + 1] - r3[0])
                    missing[x] += inside * (2 * a + 1 - (x1 + 1))
                for x in range(inner_first, inner_last + 1):  # the bulk: no clipping, vectorised
                    total[x] += ((r0[x + a + 1] - r0[x - a]) + (r1[x + a + 1] - r1[x - a])) + \
                        ((r2[x + a + 1] - r2[x - a]) + (r3[x + a + 1] - r3[x - a]))
                for x in range(max(inner_last + 1, inner_first), last + 1):  # clipped on the right (maybe both)
                    x0 = max(x - a, 0)
                    x1 = min(x + a, nx - 1)
                    total[x] += (r0[x1 + 1] - r0[x0] + r1[x1 + 1] - r1[x0]) + (r2[x1 + 1] - r2[x0] + r3[x1 + 1] - r3[x0])
                    missing[x] += inside * (2 * a + 1 - (x1 + 1 - x0))
            for x in range(first, last + 1):
                if mask[z, y, x]:
                    mean = total[x] / (full - missing[x])
                    if mean > best_global:
                        best_global = mean
                    if image[z, y, x] == peak and mean > best_local:
                        best_local = mean
    return best_local, best_global
