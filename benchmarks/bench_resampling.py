"""Resampling benchmark: a synthetic 512 x 512 x 300 CT (0.8 x 0.8 x 2.5 mm) to 1 mm isotropic.

Image linear (rounded to HU), mask linear and back to a binary mask at 0.5, on the IBSI grid (centres aligned),
with radflow (whole grid, and the ROI window that ``prepare`` computes) and with SimpleITK's ResampleImageFilter
(all threads and one thread; its time counts the filters only, not rounding or the copy to numpy) in the same
run; the results are compared voxel by voxel.

    .venv/bin/python benchmarks/bench_resampling.py [--repeats 2]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import SimpleITK as sitk

from radflow.imaging import resampling
from radflow.settings import Settings

SHAPE_ZYX = (300, 512, 512)
SPACING_XYZ = (0.8, 0.8, 2.5)
TARGET_MM = 1.0


def synthetic_ct(seed: int = 0) -> tuple[sitk.Image, sitk.Image]:
    """Air around an elliptic water body with noise, a bony rim and a 25 mm-radius soft-tissue lesion (the ROI)."""
    rng = np.random.default_rng(seed)
    z, y, x = np.ogrid[: SHAPE_ZYX[0], : SHAPE_ZYX[1], : SHAPE_ZYX[2]]
    zc, yc, xc = (np.array(SHAPE_ZYX) - 1) / 2
    sx, sy, sz = SPACING_XYZ
    body = ((x - xc) * sx / 180.0) ** 2 + ((y - yc) * sy / 130.0) ** 2 <= 1.0
    rim = body & ~(((x - xc) * sx / 170.0) ** 2 + ((y - yc) * sy / 120.0) ** 2 <= 1.0)
    image = np.full(SHAPE_ZYX, -1000, dtype=np.int16)
    image[np.broadcast_to(body, SHAPE_ZYX)] = 0
    image += rng.normal(0.0, 20.0, SHAPE_ZYX).astype(np.int16)
    image[np.broadcast_to(rim, SHAPE_ZYX)] = 900
    lesion = ((x - xc - 40) * sx) ** 2 + ((y - yc + 20) * sy) ** 2 + ((z - zc) * sz) ** 2 <= 25.0**2
    image[lesion] += 40
    mask = lesion.astype(np.uint8)
    images = []
    for array in (image, mask):
        im = sitk.GetImageFromArray(array)
        im.SetSpacing(SPACING_XYZ)
        im.SetOrigin((-200.0, -200.0, -370.0))
        images.append(im)
    return images[0], images[1]


def ibsi_reference_image(image: sitk.Image) -> sitk.Image:
    """An empty image on the IBSI target grid (centres aligned), for SimpleITK's ResampleImageFilter."""
    size = image.GetSize()
    spacing = image.GetSpacing()
    grids = [resampling.axis_grid(n, s, TARGET_MM) for n, s in zip(size, spacing)]
    origin = image.TransformContinuousIndexToPhysicalPoint([g.first for g in grids])
    reference = sitk.Image([g.n_new for g in grids], sitk.sitkUInt8)
    reference.SetSpacing([TARGET_MM] * 3)
    reference.SetOrigin(origin)
    reference.SetDirection(image.GetDirection())
    return reference


def with_simpleitk(image: sitk.Image, mask: sitk.Image, threads: int) -> tuple[sitk.Image, sitk.Image]:
    """The same resampling with SimpleITK filters only (rounding and array conversion are left out of its time)."""
    reference = ibsi_reference_image(image)
    resample = sitk.ResampleImageFilter()
    resample.SetReferenceImage(reference)
    resample.SetInterpolator(sitk.sitkLinear)
    resample.SetOutputPixelType(sitk.sitkFloat64)
    resample.SetNumberOfThreads(threads)
    image_new = resample.Execute(image)
    fraction = resample.Execute(sitk.Cast(mask, sitk.sitkFloat64))
    return image_new, sitk.BinaryThreshold(fraction, 0.5, 1e9, 1, 0)


def with_radflow(image: sitk.Image, mask: sitk.Image, settings: Settings, roi_margin_mm=None):
    image_new, fraction, _ = resampling.resample_image_and_mask(image, mask, settings, roi_margin_mm=roi_margin_mm)
    return image_new, fraction >= settings["interpolation"]["partial_volume_threshold"]


def best_time(run, repeats: int):
    best, result = float("inf"), None
    for _ in range(repeats):
        result = None  # free the previous result before the next run
        start = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    image, mask = synthetic_ct()
    settings = Settings.from_dict({"interpolation": {"enabled": True, "spacing_mm": [TARGET_MM] * 3}})
    small = sitk.RegionOfInterest(image, [8, 8, 8], [0, 0, 0]), sitk.RegionOfInterest(mask, [8, 8, 8], [0, 0, 0])
    with_radflow(*small, settings)  # compile / load the numba kernels outside the timing
    print(f"input {image.GetSize()} voxels at {image.GetSpacing()} mm -> {TARGET_MM} mm isotropic; "
          f"ROI {int(sitk.GetArrayViewFromImage(mask).sum())} voxels; best of {args.repeats}")

    t_radflow, (rf_image, rf_mask) = best_time(lambda: with_radflow(image, mask, settings), args.repeats)
    print(f"radflow, whole grid {rf_image.shape[::-1]}:  {t_radflow:7.2f} s (1 thread)")
    t_window, (win_image, _) = best_time(lambda: with_radflow(image, mask, settings, 6.2), args.repeats)
    print(f"radflow, ROI window {win_image.shape[::-1]}:  {t_window:7.3f} s (what prepare computes)")
    del win_image
    n_threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    t_sitk, (sk_image, sk_mask) = best_time(lambda: with_simpleitk(image, mask, n_threads), args.repeats)
    print(f"SimpleITK ResampleImageFilter:   {t_sitk:7.2f} s ({n_threads} threads)")
    sk_image = sk_mask = None
    t_sitk1, (sk_image, sk_mask) = best_time(lambda: with_simpleitk(image, mask, 1), args.repeats)
    print(f"SimpleITK ResampleImageFilter:   {t_sitk1:7.2f} s (1 thread)")
    print(f"ratio SimpleITK / radflow (whole grid): {t_sitk / t_radflow:.2f} ({n_threads} threads), "
          f"{t_sitk1 / t_radflow:.2f} (1 thread)")

    sk_image = np.rint(sitk.GetArrayFromImage(sk_image))
    sk_mask = sitk.GetArrayFromImage(sk_mask).astype(bool)
    differ = np.abs(rf_image - sk_image)
    # differences of 1 HU are ties (x.5) that rounding sends either way after float error of a different sum order
    print(f"agreement: image max |diff| {differ.max():g} HU, {np.count_nonzero(differ)} of {differ.size} voxels "
          f"differ; mask {np.count_nonzero(rf_mask != sk_mask)} voxels differ ({rf_mask.sum()} in radflow's)")


if __name__ == "__main__":
    main()
