"""Pipeline rule `perturb`: features of perturbed copies of each case's test scan (``stability.method:
perturbation``), for every ROI and settings document of a batch.

Each (case, roi) gets its own random stream ``default_rng([seed, hash(case_id, roi), perturbation index])``, so
the result depends on the seed only: not on the batch a case falls in, the order of cases or the number of jobs.
"""
from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import SimpleITK as sitk

from radflow import store
from radflow.extraction import extract_pair
from radflow.pipeline.features import usable_rois
from radflow.settings import Settings
from radflow.stability import perturbation as P
from radflow.stability.design import is_first_scan

log = logging.getLogger(__name__)

# Margin around the ROI of the window that is perturbed and measured: covers the local-intensity sphere (6.2 mm),
# supervoxels reaching out of the mask (about 8 mm) and volume growth.
WINDOW_MARGIN_MM = 20.0
COLUMNS = ["case_id", "scan", "roi", "settings_id", "perturbation", "family", "feature", "ibsi_code",
           "aggregation", "value", "reason"]


def stream_key(case_id: str, roi: str) -> int:
    """A stable 64-bit integer of (case, roi) for seeding (Python's hash() is salted per process)."""
    return int.from_bytes(hashlib.sha256(f"{case_id}/{roi}".encode()).digest()[:8], "little")


def label(index: int) -> str:
    return f"p{index:03d}"


def _window(image: sitk.Image, window: tuple[slice, ...]) -> sitk.Image:
    """The (z, y, x) window of an image as a SimpleITK image (x, y, z slicing keeps the physical placement)."""
    z, y, x = window
    return image[x.start:x.stop, y.start:y.stop, z.start:z.stop]


def perturbed_features(image: sitk.Image, mask: sitk.Image, all_settings: list[Settings],
                       settings: P.PerturbationSettings, seed: int, case_id: str, roi: str) -> list[pd.DataFrame]:
    """Feature tables (with a ``perturbation`` column) of every perturbation of one image and ROI."""
    image_array = sitk.GetArrayFromImage(image).astype(np.float64)
    mask_array = sitk.GetArrayFromImage(mask) != 0
    if not mask_array.any():
        log.warning("%s/%s: empty mask, no perturbations", case_id, roi)
        return []
    spacing = tuple(float(s) for s in reversed(image.GetSpacing()))
    noise_sd = P.estimate_noise_sd(image_array) if settings.noise else 0.0
    window = P.roi_window(mask_array, spacing, WINDOW_MARGIN_MM)
    reference = _window(image, window)
    local_image, local_mask = image_array[window], mask_array[window]
    tables = []
    for index in range(settings.n_perturbations):
        rng = np.random.default_rng([seed, stream_key(case_id, roi), index])
        draw = P.draw(rng, settings, label(index))
        new_image, new_mask = P.perturb(local_image, local_mask, spacing, draw, rng, noise_sd=noise_sd)
        log.info("%s/%s %s: rotation %.2f deg, translation %s vox, noise sd %.2f, volume %+.3f, contour %s, "
                 "%d -> %d voxels", case_id, roi, draw.label, draw.rotation_deg,
                 tuple(round(t, 3) for t in draw.translation_vox), noise_sd if draw.noise else 0.0,
                 draw.volume_change, draw.contour_randomisation, int(local_mask.sum()), int(new_mask.sum()))
        perturbed_image = sitk.GetImageFromArray(new_image)
        perturbed_image.CopyInformation(reference)
        perturbed_mask = sitk.GetImageFromArray(new_mask.astype(np.uint8))
        perturbed_mask.CopyInformation(reference)
        for doc in all_settings:
            try:
                table = extract_pair(perturbed_image, perturbed_mask, doc)
            except (ValueError, ArithmeticError) as exc:  # e.g. a mask shrunk to nothing: this copy is missing
                log.warning("%s/%s %s (%s): extraction failed: %s", case_id, roi, draw.label, doc.name, exc)
                continue
            table.insert(0, "perturbation", draw.label)
            table.insert(0, "settings_id", doc.settings_id)
            tables.append(table)
    return tables


def perturb_batch(manifest_path: Path, qc_path: Path, settings_paths: list[Path],
                  settings: P.PerturbationSettings, seed: int) -> pd.DataFrame:
    """Perturbed-copy features of the QC-passed first scan of every case in a batch, of each kind (``test``,
    ``pt_test``, ``t2w_test``: each modality and sequence has its own settings ids to be found stable)."""
    all_settings = [Settings.from_yaml(p) for p in settings_paths]
    frames = []
    for usable in usable_rois(manifest_path, qc_path, is_first_scan):
        matching = [doc for doc in all_settings if doc.applies_to(usable.modality, usable.sequence)]
        for table in perturbed_features(usable.image, usable.mask, matching, settings, seed, usable.case_id,
                                        usable.roi):
            table.insert(0, "roi", usable.roi)
            table.insert(0, "scan", usable.scan)
            table.insert(0, "case_id", usable.case_id)
            frames.append(table)
    if not frames:
        empty = store.empty_frame("features")
        empty.insert(4, "perturbation", pd.Series(dtype="object"))
        return empty[COLUMNS]
    return pd.concat(frames, ignore_index=True)[COLUMNS]
