"""Feature-extraction settings in IBSI terms: validation, canonical form and content hash (``settings_id``).

A settings document is YAML/JSON; every key has an IBSI default, unknown keys are an error (a typo must not
silently fall back to a default), and ``settings_id`` hashes the canonical document with defaults filled in, so the
same settings always give the same id in DuckDB and RDF.

Validation is complete when the document is loaded (``Settings.from_dict`` / ``from_yaml`` /
``validate_settings_file``): every value has its type (integers where a count is meant, real booleans, so that the
string ``"false"`` is refused), its range (spacing > 0 with one value per axis, partial-volume threshold in (0, 1],
sphere volume > 0 ...), closed lists are closed (modality, families), and a memory estimate refuses a bin count or a
grid that cannot fit, saying how large it would be. Every problem is a ``SettingsError`` with a one-line message.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from radflow.ibsi import FAMILIES, MATRIX_AGGREGATIONS, ZONE_AGGREGATIONS
from radflow.imaging.filters.registry import FilterSpec
from radflow.imaging.filters.registry import defaults as filter_defaults
from radflow.imaging.filters.registry import normalise as normalise_filter
from radflow.sequences import SequenceError, checked_name

DISCRETISATION_METHODS = ("fixed_bin_size", "fixed_bin_number", "none")
MODALITIES = ("CT", "PET", "MR", "generic")
# DICOM Modality values of each settings modality (a settings document applies only to the modality it names).
DICOM_MODALITIES = {"CT": ("CT",), "PET": ("PT",), "MR": ("MR",)}
#: The settings document radflow ships for each DICOM modality (named when settings do not fit a scan).
SHIPPED_DOCUMENTS = {"CT": "config/settings/ct_iso1mm_fbs25.yaml", "PT": "config/settings/pet_suv.yaml",
                     "MR": "config/settings/mr_zscore_fbn32.yaml"}
INTERPOLATORS = ("nearest", "linear", "cubic")
NORMALISATIONS = ("none", "z_score", "percentile")
#: Grey levels a discretisation may produce. The texture code keeps per-level lookup tables (8 bytes a level) and
#: its matrices grow with the levels present; beyond this a setting is a mistake (bin width 1e-6 HU), not a choice.
MAX_GREY_LEVELS = 65536
#: Memory a feature job may use (MB) unless told otherwise (``radflow features --memory-mb``; the rule's mem_mb).
DEFAULT_MEMORY_MB = 4000
#: Bytes held per voxel of the prepared grid while one ROI is extracted: image and partial-volume mask as float64
#: on the interpolation grid, the cropped copies, boolean masks, int32 grey levels and the texture/zone scratch.
BYTES_PER_GRID_VOXEL = 64

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
    """A settings document that cannot be used; the message is one line naming the key, the value and the rule."""


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


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _is_integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _need(condition: bool, key: str, value: Any, rule: str) -> None:
    if not condition:
        raise SettingsError(f"{key} must be {rule}, got {value!r}")


def _bytes_text(n_bytes: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n_bytes >= size:
            return f"{n_bytes / size:.3g} {unit}"
    return f"{n_bytes / 1e3:.3g} kB"


def _validate_discretisation(doc: dict) -> None:
    reseg_range = doc["resegmentation"]["range"]
    for group in ("texture", "ivh"):
        disc, where = doc["discretisation"][group], f"discretisation.{group}"
        method = disc["method"]
        if method not in DISCRETISATION_METHODS:
            raise SettingsError(f"{where}.method must be one of {DISCRETISATION_METHODS}, got {method!r}")
        bin_width, n_bins, lower = disc["bin_width"], disc["n_bins"], disc["lower_bound"]
        _need(bin_width is None or (_is_number(bin_width) and bin_width > 0), f"{where}.bin_width",
              bin_width, "a number > 0")
        _need(n_bins is None or (_is_integer(n_bins) and n_bins >= 1), f"{where}.n_bins", n_bins, "an integer >= 1")
        _need(lower is None or _is_number(lower), f"{where}.lower_bound", lower, "a number or null")
        if method == "fixed_bin_size" and bin_width is None:
            raise SettingsError(f"{where}: fixed_bin_size needs bin_width > 0")
        if method == "fixed_bin_number" and n_bins is None:
            raise SettingsError(f"{where}: fixed_bin_number needs n_bins >= 1")
        if method == "fixed_bin_number" and n_bins > MAX_GREY_LEVELS:
            raise SettingsError(f"{where}.n_bins {n_bins} exceeds the maximum of {MAX_GREY_LEVELS} grey levels "
                                f"(a full co-occurrence matrix alone would take {_bytes_text(8.0 * n_bins ** 2)})")
        if method == "fixed_bin_size" and reseg_range is not None and reseg_range[1] is not None:
            low = lower if lower is not None else reseg_range[0]
            if low is not None and reseg_range[1] > low:
                levels = math.ceil((reseg_range[1] - low) / bin_width) + 1
                if levels > MAX_GREY_LEVELS:
                    raise SettingsError(
                        f"{where}.bin_width {bin_width:g} over the intensity range [{low:g}, {reseg_range[1]:g}] "
                        f"gives {levels} grey levels, more than the maximum of {MAX_GREY_LEVELS} "
                        f"(its level table alone would take {_bytes_text(8.0 * levels)})")


def _validate_interpolation(doc: dict) -> None:
    interp = doc["interpolation"]
    for key in ("enabled", "round_intensities"):
        _need(isinstance(interp[key], bool), f"interpolation.{key}", interp[key], "true or false")
    for key in ("image_interpolator", "mask_interpolator"):
        if interp[key] not in INTERPOLATORS:
            raise SettingsError(f"interpolation.{key} must be one of {INTERPOLATORS}, got {interp[key]!r}")
    if interp["dimensions"] not in ("2D", "3D"):
        raise SettingsError(f"interpolation.dimensions must be 2D or 3D, got {interp['dimensions']!r}")
    spacing = interp["spacing_mm"]
    rule = "[x, y, z] in mm, each > 0" + (" (z may be null for 2D)" if interp["dimensions"] == "2D" else "")
    _need(isinstance(spacing, list | tuple) and len(spacing) == 3, "interpolation.spacing_mm", spacing, rule)
    for axis, value in zip("xyz", spacing):
        if axis == "z" and value is None and interp["dimensions"] == "2D":
            continue
        _need(_is_number(value) and value > 0, "interpolation.spacing_mm", spacing, rule)
    threshold = interp["partial_volume_threshold"]
    _need(_is_number(threshold) and 0 < threshold <= 1, "interpolation.partial_volume_threshold", threshold,
          "a number in (0, 1]")


def _validate_memory(doc: dict, memory_mb: float = DEFAULT_MEMORY_MB) -> None:
    """A grid whose local-intensity sphere alone cannot fit in memory is refused before any image is read."""
    interp = doc["interpolation"]
    if not interp["enabled"]:
        return
    spacing = [s for s in interp["spacing_mm"] if s is not None]
    if len(spacing) < 3:  # 2D: the slice spacing comes from the image; take the finest in-plane value for z
        spacing.append(min(spacing))
    sphere_mm3 = 1000.0 * doc["local_intensity"]["sphere_volume_cm3"]
    voxels = sphere_mm3 / math.prod(spacing)
    needed = voxels * BYTES_PER_GRID_VOXEL
    if needed > memory_mb * 1e6:
        raise SettingsError(
            f"interpolation.spacing_mm {list(interp['spacing_mm'])} is too fine: the "
            f"{doc['local_intensity']['sphere_volume_cm3']:g} cm3 local-intensity sphere alone would be "
            f"{voxels:.3g} voxels ({_bytes_text(needed)}), more than the {memory_mb:g} MB a feature job may use")


def _validate(doc: dict) -> None:
    _need(doc["modality"] in MODALITIES, "modality", doc["modality"], f"one of {list(MODALITIES)}")
    _need(doc["intensity_normalisation"] in NORMALISATIONS, "intensity_normalisation",
          doc["intensity_normalisation"], f"one of {list(NORMALISATIONS)}")
    _validate_interpolation(doc)
    reseg = doc["resegmentation"]
    rng = reseg["range"]
    if rng is not None and (not isinstance(rng, list | tuple) or len(rng) != 2
                            or not all(v is None or _is_number(v) for v in rng)
                            or (None not in rng and rng[0] >= rng[1])):
        raise SettingsError(f"resegmentation.range must be [low, high] with low < high (either may be null), "
                            f"got {rng!r}")
    sigma = reseg["outlier_sigma"]
    _need(sigma is None or (_is_number(sigma) and sigma > 0), "resegmentation.outlier_sigma", sigma,
          "a number > 0 or null")
    _validate_discretisation(doc)
    families = doc["families"]
    _need(isinstance(families, list | tuple) and len(families) > 0, "families", families,
          f"a non-empty list of {list(FAMILIES)}")
    unknown = set(families) - set(FAMILIES)
    if unknown:
        raise SettingsError(f"unknown feature families {sorted(unknown)}; known: {list(FAMILIES)}")
    texture = doc["texture"]
    for key in ("glcm_distance", "ngtdm_distance", "ngldm_distance", "zone_linkage"):
        _need(_is_integer(texture[key]) and texture[key] >= 1, f"texture.{key}", texture[key], "an integer >= 1")
    _need(_is_integer(texture["ngldm_coarseness"]) and texture["ngldm_coarseness"] >= 0, "texture.ngldm_coarseness",
          texture["ngldm_coarseness"], "an integer >= 0")
    _need(isinstance(texture["glcm_symmetric"], bool), "texture.glcm_symmetric", texture["glcm_symmetric"],
          "true or false")
    for key, allowed in (("matrix_aggregations", MATRIX_AGGREGATIONS), ("zone_aggregations", ZONE_AGGREGATIONS)):
        _need(isinstance(texture[key], list | tuple), f"texture.{key}", texture[key], f"a list of {list(allowed)}")
        bad = set(texture[key]) - set(allowed)
        if bad:
            raise SettingsError(f"texture.{key}: unknown aggregations {sorted(bad)}; known: {list(allowed)}")
    morphology = doc["morphology"]
    _need(_is_integer(morphology["spatial_autocorrelation_exact_max_voxels"])
          and morphology["spatial_autocorrelation_exact_max_voxels"] >= 1,
          "morphology.spatial_autocorrelation_exact_max_voxels",
          morphology["spatial_autocorrelation_exact_max_voxels"], "an integer >= 1")
    _need(_is_integer(morphology["seed"]) and morphology["seed"] >= 0, "morphology.seed", morphology["seed"],
          "an integer >= 0")
    sphere = doc["local_intensity"]["sphere_volume_cm3"]
    _need(_is_number(sphere) and sphere > 0, "local_intensity.sphere_volume_cm3", sphere, "a number > 0")
    try:
        FilterSpec.from_settings(doc["filter"])
    except (ValueError, TypeError) as exc:
        raise SettingsError(f"filter: {exc}") from None
    _validate_memory(doc)


@dataclass(frozen=True)
class Settings:
    """A validated, defaults-filled settings document. Access groups as attributes of ``doc``."""

    doc: dict = field(repr=False)
    name: str = ""

    @classmethod
    def from_dict(cls, given: dict | None, name: str = "") -> "Settings":
        given = dict(given or {})
        sequence = given.pop("sequence", None)
        doc = _merge(dict(DEFAULTS, filter=filter_defaults()), given, "")
        doc["filter"] = normalise_filter(doc["filter"])  # "pi/4" and 0.785... hash alike
        _validate(doc)
        if sequence is not None:  # absent from the canonical document unless given: other documents keep their ids
            try:
                doc["sequence"] = checked_name(sequence, "sequence")
            except SequenceError as exc:
                raise SettingsError(str(exc)) from None
        return cls(doc=doc, name=name)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "Settings":
        """Load and validate a settings file, a radflow settings document or a PyRadiomics parameter file
        (detected by its keys; see ``from_pyradiomics``, which this calls with the file's first image type). Any
        problem (unreadable, not YAML, invalid) is a SettingsError naming the file."""
        from radflow.pyradiomics_params import is_pyradiomics

        path = Path(path)
        try:
            with path.open() as fh:
                given = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise SettingsError(f"{path}: cannot be read ({exc.strerror or type(exc).__name__})") from None
        except yaml.YAMLError as exc:
            raise SettingsError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
        if not isinstance(given, dict):
            raise SettingsError(f"{path}: a settings document must be a mapping, got {type(given).__name__}")
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

    def applies_to(self, dicom_modality: str | None, sequence: str | None = None) -> bool:
        """Whether this document is meant for images of ``dicom_modality`` (CT, PT, MR); ``generic`` fits all, and
        an image of unknown modality is taken as CT (the manifest's default). A document that names a
        ``sequence`` (``radflow.sequences``) is meant for that sequence's series only; one that names none, for
        every series of its modality."""
        if self.doc.get("sequence") and self.doc["sequence"] != (sequence or ""):
            return False
        return self.fits_modality(dicom_modality)

    def fits_modality(self, dicom_modality: str | None) -> bool:
        """Whether this document's ``modality`` fits images of ``dicom_modality``, whatever sequence it names (a
        one-off extraction is given its document by hand)."""
        if self.doc["modality"] == "generic":
            return True
        return (dicom_modality or "CT") in DICOM_MODALITIES[self.doc["modality"]]

    def canonical_json(self) -> str:
        """Sorted, compact JSON of the defaults-filled document: the thing that is hashed."""
        return json.dumps(self.doc, sort_keys=True, separators=(",", ":"), default=float)

    @property
    def settings_id(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()[:12]

    def __getitem__(self, key: str) -> Any:
        return self.doc[key]


def validate_settings_file(path: str | Path) -> Settings:
    """The validated settings of ``path``; raises SettingsError with a one-line message naming the file."""
    return Settings.from_yaml(path)
