"""The benchmark's synthetic CT: one 512 x 512 x 100 volume (0.8 x 0.8 x 2.5 mm) with three lesions of about 5 k,
200 k and 1 M voxels, each the ROI of its own mask.

A lesion is an ellipsoid with a lobulated, seeded-noise boundary (one connected component), a textured soft-tissue
body (smooth noise plus voxel noise), a darker necrotic core and a few calcified spots, inside an elliptic water-
density body with air around it, so that every tool sees a realistic grey-level range (about 20 bins at 25 HU).
The volume is written as int16 NIfTI (``.nii.gz``, as the pipeline writes its volumes); the masks as uint8.

    .venv/bin/python benchmarks/synthetic_ct.py OUTDIR
"""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import SimpleITK as sitk
from scipy import ndimage

SHAPE_ZYX = (100, 512, 512)
SPACING_XYZ = (0.8, 0.8, 2.5)


@dataclass(frozen=True)
class Lesion:
    name: str
    target_voxels: int
    centre_zyx: tuple[int, int, int]
    aspect_zyx: tuple[float, float, float]  # semi-axis ratios in mm, scaled to reach target_voxels


LESIONS = (
    Lesion("small", 5_000, (50, 200, 330), (1.0, 1.0, 1.1)),
    Lesion("medium", 200_000, (50, 340, 385), (1.0, 1.1, 1.2)),
    Lesion("large", 1_000_000, (50, 240, 170), (1.0, 1.15, 1.3)),
)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma_vox: tuple[float, ...]) -> np.ndarray:
    """Gaussian-filtered white noise scaled to unit standard deviation."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_vox, mode="reflect")
    return field / field.std()


def lesion_mask(lesion: Lesion, rng: np.random.Generator) -> np.ndarray:
    """A lobulated ellipsoid of ``lesion.target_voxels`` voxels (within 1 %), one 26-connected component."""
    sz, sy, sx = SPACING_XYZ[2], SPACING_XYZ[1], SPACING_XYZ[0]
    # Semi-axis scale s (mm) so that (4/3) pi s^3 prod(aspect) / voxel volume = target.
    voxel_mm3 = sx * sy * sz
    scale = (3.0 * lesion.target_voxels * voxel_mm3 / (4.0 * np.pi * np.prod(lesion.aspect_zyx))) ** (1.0 / 3.0)
    half = [int(np.ceil(1.4 * scale * a / s)) + 2 for a, s in zip(lesion.aspect_zyx, (sz, sy, sx))]
    window = tuple(slice(c - h, c + h + 1) for c, h in zip(lesion.centre_zyx, half))
    for c, h, n in zip(lesion.centre_zyx, half, SHAPE_ZYX):
        if c - h < 0 or c + h + 1 > n:
            raise ValueError(f"lesion {lesion.name} does not fit the volume")
    z, y, x = np.ogrid[tuple(slice(-h, h + 1) for h in half)]
    radius = np.sqrt((z * sz / lesion.aspect_zyx[0]) ** 2 + (y * sy / lesion.aspect_zyx[1]) ** 2
                     + (x * sx / lesion.aspect_zyx[2]) ** 2)
    lobes = smooth_noise(rng, radius.shape, (max(2.0, 6.0 * sx / sz), 6.0, 6.0))
    bumpy = radius * (1.0 + 0.12 * lobes)
    # Bisection on the threshold radius for the voxel count.
    lo, hi = 0.3 * scale, 1.6 * scale
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if np.count_nonzero(bumpy <= mid) < lesion.target_voxels:
            lo = mid
        else:
            hi = mid
    inside = bumpy <= hi
    labels, n = ndimage.label(inside, structure=np.ones((3, 3, 3)))
    if n > 1:
        sizes = np.bincount(labels.ravel())[1:]
        inside = labels == 1 + int(np.argmax(sizes))
    mask = np.zeros(SHAPE_ZYX, dtype=np.uint8)
    mask[window] = inside
    return mask


def synthetic_ct(seed: int = 20240611) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The int16 HU volume (z, y, x) and the masks keyed by lesion name."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: SHAPE_ZYX[0], : SHAPE_ZYX[1], : SHAPE_ZYX[2]]
    yc, xc = (SHAPE_ZYX[1] - 1) / 2, (SHAPE_ZYX[2] - 1) / 2
    body = ((x - xc) * SPACING_XYZ[0] / 195.0) ** 2 + ((y - yc) * SPACING_XYZ[1] / 150.0) ** 2 <= 1.0
    image = np.where(body, 0.0, -1000.0) * np.ones(SHAPE_ZYX[0])[:, None, None]
    image += rng.normal(0.0, 12.0, SHAPE_ZYX)
    masks = {}
    for lesion in LESIONS:
        mask = lesion_mask(lesion, rng).astype(bool)
        box = tuple(slice(int(i.min()), int(i.max()) + 1) for i in np.nonzero(mask))
        inside = mask[box]
        texture = smooth_noise(rng, inside.shape, (0.8, 2.5, 2.5))
        depth = ndimage.distance_transform_edt(inside, sampling=(SPACING_XYZ[2], SPACING_XYZ[1], SPACING_XYZ[0]))
        necrosis = np.clip((depth - 0.55 * depth.max()) / (0.2 * depth.max() + 1e-9), 0.0, 1.0)
        values = 45.0 + 25.0 * texture - 35.0 * necrosis + rng.normal(0.0, 15.0, inside.shape)
        calcified = smooth_noise(rng, inside.shape, (0.6, 1.5, 1.5)) > 3.2
        values[calcified] += 280.0
        region = image[box]
        region[inside] = values[inside]
        masks[lesion.name] = mask.astype(np.uint8)
    return np.round(image).astype(np.int16), masks


def to_image(array: np.ndarray) -> sitk.Image:
    image = sitk.GetImageFromArray(array)
    image.SetSpacing(SPACING_XYZ)
    image.SetOrigin((-0.5 * SHAPE_ZYX[2] * SPACING_XYZ[0], -0.5 * SHAPE_ZYX[1] * SPACING_XYZ[1], 0.0))
    return image


def write(outdir: Path, seed: int = 20240611) -> dict[str, Path]:
    """Write ``ct.nii.gz`` and ``mask_<name>.nii.gz``; return the paths keyed by 'ct' and the lesion names."""
    outdir.mkdir(parents=True, exist_ok=True)
    image, masks = synthetic_ct(seed)
    paths = {"ct": outdir / "ct.nii.gz"}
    sitk.WriteImage(to_image(image), str(paths["ct"]), useCompression=True)
    for name, mask in masks.items():
        paths[name] = outdir / f"mask_{name}.nii.gz"
        sitk.WriteImage(to_image(mask), str(paths[name]), useCompression=True)
    return paths


if __name__ == "__main__":
    for key, path in write(Path(sys.argv[1])).items():
        print(key, path)
