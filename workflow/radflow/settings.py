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


class PyRadiomicsTranslationWarning(UserWarning):
    """A PyRadiomics behaviour radflow does not copy; the message says what radflow does instead."""


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
        """A radflow settings document, or a PyRadiomics parameter file (detected by its keys; see
        ``from_pyradiomics``, which this calls with the file's first image type)."""
        from radflow.pyradiomics_params import is_pyradiomics

        path = Path(path)
        with path.open() as fh:
            given = yaml.safe_load(fh) or {}
        if not isinstance(given, dict):
            raise SettingsError(f"{path}: a settings document is a mapping of keys, not {type(given).__name__}")
        if is_pyradiomics(given):
            return cls.from_pyradiomics(path)
        name = given.pop("name", path.stem)
        try:
            return cls.from_dict(given, name=name)
        except SettingsError as exc:
            raise SettingsError(f"{path}: {exc}") from None

    @classmethod
    def from_pyradiomics(cls, path: str | Path, image_type: str | None = None) -> "Settings":
        """The radflow document for one image type of a PyRadiomics parameter file (``original``,
        ``log-sigma-2mm``, ``wavelet-LLH``, ...; default: the first the file enables). Every PyRadiomics behaviour
        radflow does not copy is issued as a ``PyRadiomicsTranslationWarning`` saying what radflow does instead;
        ``radflow settings import-pyradiomics`` writes one document per image type."""
        import warnings

        from radflow.pyradiomics_params import PyRadiomicsParamsError, read

        path = Path(path)
        try:
            translations = read(path)
        except PyRadiomicsParamsError as exc:
            raise SettingsError(str(exc)) from None
        labels = [t.image_type for t in translations]
        chosen = translations[0] if image_type is None else next(
            (t for t in translations if t.image_type == image_type), None)
        if chosen is None:
            raise SettingsError(f"{path}: no image type {image_type!r}; the file enables {labels}")
        messages = list(chosen.warnings)
        if image_type is None and len(translations) > 1:
            messages.append(f"it enables {len(translations)} images ({', '.join(labels)}); this uses "
                            f"{chosen.image_type!r} only: `radflow settings import-pyradiomics` writes one radflow "
                            "document per image")
        for message in messages:
            warnings.warn(f"{path.name}: {message}", PyRadiomicsTranslationWarning, stacklevel=2)
        name = path.stem if len(translations) == 1 else f"{path.stem}-{chosen.image_type}"
        try:
            return cls.from_dict(chosen.doc, name=name)
        except SettingsError as exc:
            raise SettingsError(f"{path} ({chosen.image_type}): {exc}") from None

    def canonical_json(self) -> str:
        """Sorted, compact JSON of the defaults-filled document: the thing that is hashed."""
        return json.dumps(self.doc, sort_keys=True, separators=(",", ":"), default=float)

    @property
    def settings_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    def __getitem__(self, key: str) -> Any:
        return self.doc[key]
