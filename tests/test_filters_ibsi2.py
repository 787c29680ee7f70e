"""IBSI-2 phase 1: every consensus response map of ../shared/ibsi2 reproduced voxel-wise within 1% of its range.

The filter parameters come from the test table (phase1_filter_tests.csv) and are translated to radflow's
``filter`` settings group here, so the same path a settings file takes is the one tested.
"""
from __future__ import annotations

import csv
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from ibsi_reference import SHARED
from radflow.imaging.filters import FilterSpec, apply_filter

IBSI2 = SHARED / "ibsi2"
TABLE = IBSI2 / "phase1_filter_tests.csv"

_TYPES = {
    "mean": "mean",
    "LoG": "laplacian_of_gaussian",
    "Laws": "laws",
    "Gabor": "gabor",
    "separable wavelet": "separable_wavelet",
    "separable wavelet (decomposed)": "separable_wavelet",
    "non-separable wavelet (Simoncelli)": "simoncelli",
    "Riesz-transformed LoG": "laplacian_of_gaussian",
    "Riesz-transformed Simoncelli": "simoncelli",
}
_BOUNDARIES = {"zero", "nearest", "periodic", "mirror"}


def _rows() -> list[dict]:
    if not TABLE.exists():
        return []
    with TABLE.open(newline="") as fh:
        return [row for row in csv.DictReader(fh) if row["reference_available"] == "yes"]


def settings_group(row: dict) -> dict:
    """The radflow ``filter`` settings group for one phase-1 test."""
    group: dict = {"type": _TYPES[row["filter"]], "dimensions": row["dimensionality"]}
    # The Simoncelli rows leave the boundary unstated: a Fourier-domain filter is periodic.
    group["boundary_condition"] = row["boundary_condition"] if row["boundary_condition"] in _BOUNDARIES else "periodic"
    if row["support_voxels"]:
        group["support_voxels"] = int(row["support_voxels"])
    if row["sigma_mm"]:
        group["sigma_mm"] = float(row["sigma_mm"])
    if row["cutoff"]:
        group["cutoff_sigma"] = float(row["cutoff"].split("*")[0])
    if row["laws_kernel"]:
        group["laws_kernel"] = row["laws_kernel"]
    if row["rotation_invariance"] not in ("", "no") and group["type"] != "gabor":
        group["rotation_invariance"] = True
    if row["pooling"]:
        group["pooling"] = row["pooling"]
    if row["energy_map"] == "yes":
        group.update(energy_map=True, energy_delta_voxels=int(row["energy_delta_voxels"]))
    if row["gabor_lambda_mm"]:
        group.update(gabor_lambda_mm=float(row["gabor_lambda_mm"]), gabor_gamma=float(Fraction(row["gabor_gamma"])))
        group["gabor_theta"] = row["gabor_theta"] or 0.0
        group["gabor_delta_theta"] = row["gabor_delta_theta"] or None
        group["orthogonal_planes"] = bool(row["orthogonal_planes"])
    if row["wavelet_family"] and group["type"] == "separable_wavelet":
        group["wavelet"] = row["wavelet_family"].split()[0]
        group["wavelet_map"] = row["wavelet_map"].split()[0]
    if row["wavelet_level"]:
        group["wavelet_level"] = int(row["wavelet_level"])
    if row["riesz_order"]:
        group["riesz_order"] = [int(v) for v in row["riesz_order"].strip("()").split(",")]
    return group


def _array(path: Path) -> tuple[np.ndarray, tuple[float, ...]]:
    image = sitk.ReadImage(str(path))
    return sitk.GetArrayFromImage(image).astype(np.float64), tuple(reversed(image.GetSpacing()))


@pytest.mark.parametrize("row", _rows(), ids=lambda row: row["test_id"])
def test_phase1_response_map(row):
    image, spacing = _array(IBSI2 / row["phantom_file"])
    reference, _ = _array(IBSI2 / row["reference_map_file"])
    spec = FilterSpec.from_settings(settings_group(row))
    response = apply_filter(image, spacing, spec)
    deviation = float(np.abs(response - reference).max())
    assert deviation <= float(row["abs_tolerance_1pct_of_range"]), f"max deviation {deviation:.4g}"


def test_phase1_table_is_covered():
    rows = _rows()
    if not rows:
        pytest.skip(f"{TABLE} is absent")
    assert len(rows) == 33 and all(row["filter"] in _TYPES for row in rows)
