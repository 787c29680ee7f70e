"""Feature-extraction settings in IBSI terms: validation, canonical form and content hash (``settings_id``).

A settings document is YAML/JSON; every key has an IBSI default, unknown keys are an error (a typo must not
silently fall back to a default), and ``settings_id`` hashes the canonical document with defaults filled in, so the
same settings always give the same id in DuckDB and RDF.
"""
from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from radflow.ibsi import FAMILIES, MATRIX_AGGREGATIONS, ZONE_AGGREGATIONS
from radflow.imaging.filters.registry import FilterSpec
from radflow.imaging.filters.registry import defaults as filter_defaults
from radflow.imaging.filters.registry import normalise as normalise_filter

DISCRETISATION_METHODS = ("fixed_bin_size", "fixed_bin_number", "none")
INTERPOLATORS = ("nearest", "linear", "cubic")

DEFAULTS: dict[str, Any] = {
    "modality": "CT",  # CT | PET | MR | generic
    "intensity_normalisation": "none",  # MR: none | z_score | percentile
    "interpolation": {
        "enabled": False,
        "dimensions": "3D",  # 3D resamples all axes; 2D keeps the slice spacing
        "spacing_mm": [2.0, 2.0, 2.0],  # (x, y, z) as IBSI tables give it
        "image_interpolator": "linear",
        "mask_interpolator": "linear",
        "partial_volume_threshold": 0.5,
        "round_intensities": True,  # CT: round to integer HU after interpolation
    },
    "resegmentation": {
        "range": None,  # [low, high] or null; either end may be null
        "outlier_sigma": None,  # e.g. 3 for mean +/- 3 SD
    },
    "discretisation": {
        "texture": {"method": "fixed_bin_size", "bin_width": 25.0, "lower_bound": None, "n_bins": None},
        "ivh": {"method": "none", "bin_width": None, "lower_bound": None, "n_bins": None},
    },
    "texture": {
        "glcm_distance": 1,
        "glcm_symmetric": True,
        "ngtdm_distance": 1,
        "ngldm_distance": 1,
        "ngldm_coarseness": 0,
        "zone_linkage": 1,
        "matrix_aggregations": list(MATRIX_AGGREGATIONS),
        "zone_aggregations": list(ZONE_AGGREGATIONS),
    },
    "morphology": {
        # Moran's I / Geary's C are exact (pair sum or FFT); only when the FFT grid would exceed
        # morphology.FFT_MAX_CELLS and the ROI has more voxels than this, a seeded subsample of this many
        # voxels estimates them.
        "spatial_autocorrelation_exact_max_voxels": 20000,
        "seed": 0,
    },
    "local_intensity": {"sphere_volume_cm3": 1.0},
    # IBSI-2 convolutional filter applied after interpolation (and re-segmentation, which uses the unfiltered
    # intensities); features are computed on its response map. Keys and defaults: the registered filters
    # (imaging/filters/registry.py and each filter's module); refreshed in from_dict for plug-in filters.
    "filter": filter_defaults(),
    "families": list(FAMILIES),
}


class SettingsError(ValueError):
    pass


def _merge(defaults: dict, given: dict, where: str) -> dict:
    merged = copy.deepcopy(defaults)
    for key, value in given.items():
        if key not in defaults:
            raise SettingsError(f"unknown settings key {where}{key!r}; known: {sorted(defaults)}")
        if isinstance(defaults[key], dict):
            if not isinstance(value, dict):
                raise SettingsError(f"settings key {where}{key!r} must be a mapping")
            merged[key] = _merge(defaults[key], value, f"{where}{key}.")
        else:
            merged[key] = value
    return merged


def _validate(doc: dict) -> None:
    for group in ("texture", "ivh"):
        disc = doc["discretisation"][group]
        method = disc["method"]
        if method not in DISCRETISATION_METHODS:
            raise SettingsError(f"discretisation.{group}.method must be one of {DISCRETISATION_METHODS}, got {method!r}")
        if method == "fixed_bin_size" and not (disc["bin_width"] and disc["bin_width"] > 0):
            raise SettingsError(f"discretisation.{group}: fixed_bin_size needs bin_width > 0")
        if method == "fixed_bin_number" and not (disc["n_bins"] and int(disc["n_bins"]) >= 1):
            raise SettingsError(f"discretisation.{group}: fixed_bin_number needs n_bins >= 1")
    interp = doc["interpolation"]
    for key in ("image_interpolator", "mask_interpolator"):
        if interp[key] not in INTERPOLATORS:
            raise SettingsError(f"interpolation.{key} must be one of {INTERPOLATORS}")
    if interp["dimensions"] not in ("2D", "3D"):
        raise SettingsError("interpolation.dimensions must be 2D or 3D")
    unknown = set(doc["families"]) - set(FAMILIES)
    if unknown:
        raise SettingsError(f"unknown feature families {sorted(unknown)}; known: {list(FAMILIES)}")
    for key, allowed in (("matrix_aggregations", MATRIX_AGGREGATIONS), ("zone_aggregations", ZONE_AGGREGATIONS)):
        bad = set(doc["texture"][key]) - set(allowed)
        if bad:
            raise SettingsError(f"texture.{key}: unknown aggregations {sorted(bad)}; known: {list(allowed)}")
    rng = doc["resegmentation"]["range"]
    if rng is not None and (len(rng) != 2 or (None not in rng and rng[0] >= rng[1])):
        raise SettingsError("resegmentation.range must be [low, high] with low < high")
    try:
        FilterSpec.from_settings(doc["filter"])
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"filter: {exc}") from None


@dataclass(frozen=True)
class Settings:
    """A validated, defaults-filled settings document. Access groups as attributes of ``doc``."""

    doc: dict = field(repr=False)
    name: str = ""

    @classmethod
    def from_dict(cls, given: dict | None, name: str = "") -> "Settings":
        doc = _merge(dict(DEFAULTS, filter=filter_defaults()), given or {}, "")
        doc["filter"] = normalise_filter(doc["filter"])  # "pi/4" and 0.785... hash alike
        _validate(doc)
        return cls(doc=doc, name=name)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Settings":
        path = Path(path)
        with path.open() as fh:
            given = yaml.safe_load(fh) or {}
        name = given.pop("name", path.stem)
        return cls.from_dict(given, name=name)

    def canonical_json(self) -> str:
        """Sorted, compact JSON of the defaults-filled document: the thing that is hashed."""
        return json.dumps(self.doc, sort_keys=True, separators=(",", ":"), default=float)

    @property
    def settings_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    def __getitem__(self, key: str) -> Any:
        return self.doc[key]
