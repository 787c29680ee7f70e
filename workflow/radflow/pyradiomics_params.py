"""PyRadiomics parameter files translated into radflow settings documents (IBSI terms).

A PyRadiomics parameter file (``setting``, ``imageType``/``inputImage``, ``featureClass``) becomes one radflow
settings document per image type it enables (Original; LoG per sigma; Wavelet per sub-band), because a radflow
document describes one image. Options radflow copies are translated; every PyRadiomics behaviour radflow does not
copy is a warning that says what radflow does instead (``Translation.warnings``), so nobody believes the numbers
are PyRadiomics' when they are IBSI's.

Mapping (PyRadiomics documentation, "Customizing the extraction"):

- ``binWidth`` / ``binCount`` -> ``discretisation.texture`` fixed_bin_size / fixed_bin_number;
- ``resampledPixelSpacing`` [x, y, z] -> ``interpolation.spacing_mm`` (a 0 z spacing: 2D interpolation);
  ``interpolator`` sitkNearestNeighbor / sitkLinear / sitkBSpline -> nearest / linear / cubic; the mask is
  resampled nearest-neighbour as PyRadiomics does, intensities are not rounded;
- ``normalize`` -> ``intensity_normalisation: z_score`` (whole image); ``normalizeScale`` divides the bin width
  and re-segmentation range instead of multiplying the intensities;
- ``resegmentRange`` (+ ``resegmentMode`` absolute / sigma) -> ``resegmentation.range`` / ``outlier_sigma``;
- ``force2D`` -> texture matrices per in-plane direction merged over slices (IBSI "2.5D, direction-merged"; zones
  "2.5D"); otherwise "3D, averaged" and "3D", PyRadiomics' own aggregation;
- ``distances`` -> GLCM, NGTDM and NGLDM distance; ``gldm_a`` -> NGLDM coarseness; ``symmetricalGLCM``;
- ``featureClass`` shape / firstorder / glcm / glrlm / glszm / gldm / ngtdm -> families morphology / statistics +
  intensity_histogram / glcm / glrlm / glszm / ngldm / ngtdm;
- ``imageType`` Original / LoG (``sigma``) / Wavelet (``wavelet``, ``level``) -> ``filter`` none /
  laplacian_of_gaussian / separable_wavelet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

# Top-level keys that mark a PyRadiomics parameter file (radflow documents have none of them).
MARKER_KEYS = ("setting", "imageType", "inputImage", "featureClass", "voxelSetting")

FAMILY_OF_CLASS = {
    "shape": ["morphology"],
    "firstorder": ["statistics", "intensity_histogram"],
    "glcm": ["glcm"],
    "glrlm": ["glrlm"],
    "glszm": ["glszm"],
    "gldm": ["ngldm"],
    "ngtdm": ["ngtdm"],
}
INTERPOLATOR = {"sitkNearestNeighbor": "nearest", "sitkLinear": "linear", "sitkBSpline": "cubic"}
WAVELET_BANDS = ("LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH", "LLL")

# Settings that change nothing radflow computes (bookkeeping, speed switches).
SILENT = {"additionalInfo", "enableCExtensions"}

# What radflow does instead, for PyRadiomics behaviours it does not copy.
NOT_COPIED = {
    "voxelArrayShift": "PyRadiomics adds voxelArrayShift ({value}) to intensities before energy, total energy and "
                       "RMS; radflow computes the IBSI definitions on the unshifted intensities",
    "padDistance": "padDistance ({value}) is ignored: radflow filters the whole interpolated image with the filter's "
                   "boundary condition (mirror) instead of cropping and padding around the ROI",
    "label": "label ({value}) is not a settings option in radflow: pass --roi {value} to `radflow extract` (otherwise "
             "every non-zero mask voxel is in the ROI)",
    "correctMask": "correctMask is ignored: radflow resamples the mask onto the image grid when the geometries differ "
                   "within qc.geometry_tolerance_mm and fails the case otherwise",
    "geometryTolerance": "geometryTolerance ({value}) is ignored: radflow's pipeline uses qc.geometry_tolerance_mm",
    "minimumROIDimensions": "minimumROIDimensions ({value}) is ignored: radflow's QC checks the ROI volume "
                            "(qc.min_roi_volume_mm3) instead",
    "minimumROISize": "minimumROISize ({value}) is ignored: radflow's QC checks the ROI volume (qc.min_roi_volume_mm3)",
    "preCrop": "preCrop is ignored: radflow crops to the ROI only where the result does not change",
    "normalizeScale": "normalizeScale ({value}) is not copied: radflow's z-score has unit scale, so intensity "
                      "features (mean, variance, energy, ...) are in SD units, not {value} times them; bin width and "
                      "re-segmentation range were divided by {value} so the texture bins are the same",
    "removeOutliers": "removeOutliers ({value}) is not copied: radflow's z-score normalisation keeps every voxel "
                      "(use resegmentation.outlier_sigma on the ROI instead)",
    "resampledPixelSpacing": "PyRadiomics resamples onto a grid aligned to the corner of the ROI's padded bounding "
                             "box; radflow uses the IBSI grid, centred on the original image (IBSI 1, section 2.4), "
                             "so resampled intensities differ slightly",
    "binWidth": "PyRadiomics puts bin edges at multiples of binWidth ({value}) counted from 0; radflow's IBSI fixed bin "
                "size counts from the ROI minimum (or the re-segmentation range's lower bound), so bin numbers and "
                "some texture features differ",
    "force2Ddimension": "force2Ddimension ({value}) is not copied: radflow's 2D/2.5D aggregations use axial slices",
    "distances": "PyRadiomics merges texture matrices over distances {value}; radflow uses one distance per document "
                 "(the first, {first})",
    "resegmentMode": "resegmentMode relative is not copied: radflow's re-segmentation range is absolute "
                     "(or outlier_sigma for mode sigma); the range was taken as absolute",
    "LoG": "PyRadiomics filters with SimpleITK's recursive Laplacian of Gaussian; radflow convolves with the IBSI-2 "
           "LoG kernel (truncated at 4 sigma, mirror boundary), so filtered intensities differ slightly at the edges",
    "Wavelet": "PyRadiomics' stationary wavelet transform (pywt.swtn) pads the image to a multiple of 2^level; "
               "radflow's IBSI-2 separable wavelet filters the unpadded image with a mirror boundary",
    "waveletLevels": "Wavelet level {value}: radflow translates the first decomposition level ({first}) only; add "
                     "documents with filter.wavelet_level for the others",
    "featureNames": "featureClass {value} lists individual features; radflow computes every feature of the family "
                    "(select columns afterwards)",
    "shape2D": "featureClass shape2D is not copied: radflow's morphology family is 3D",
    "imageType": "image type {value} has no IBSI counterpart in radflow and was skipped",
    "kurtosis": "PyRadiomics reports kurtosis + 3 under the name Kurtosis; radflow reports IBSI (excess) kurtosis",
}


class PyRadiomicsParamsError(ValueError):
    pass


@dataclass
class Translation:
    """One radflow settings document (``doc``, without ``name``) for one PyRadiomics image type (``image_type``)."""

    image_type: str
    doc: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def is_pyradiomics(document: Any) -> bool:
    """Whether a parsed YAML document is a PyRadiomics parameter file."""
    return isinstance(document, dict) and any(key in document for key in MARKER_KEYS)


def _warn(warnings: list[str], key: str, **values) -> None:
    message = NOT_COPIED[key].format(**values)
    if message not in warnings:
        warnings.append(message)


def _families(feature_class: dict | None, warnings: list[str]) -> list[str]:
    """radflow families for ``featureClass``; without one, PyRadiomics computes every class it has (so radflow
    leaves out the families PyRadiomics lacks: local intensity, intensity-volume histogram, GLDZM)."""
    if feature_class is None:
        feature_class = {name: None for name in FAMILY_OF_CLASS}
    families: list[str] = []
    for name, features in feature_class.items():
        if name == "shape2D":
            _warn(warnings, "shape2D")
            continue
        if name not in FAMILY_OF_CLASS:
            raise PyRadiomicsParamsError(f"unknown PyRadiomics featureClass {name!r}; known: {sorted(FAMILY_OF_CLASS)}")
        if features:
            _warn(warnings, "featureNames", value=name)
        families += [f for f in FAMILY_OF_CLASS[name] if f not in families]
    if "statistics" in families:
        _warn(warnings, "kurtosis")
    return families


def setting_value(number: float) -> str:
    return f"{number:g}"


def _common(setting: dict, warnings: list[str]) -> dict[str, Any]:
    """The parts of the document every image type shares (everything but ``filter``)."""
    setting = dict(setting)
    doc: dict[str, Any] = {}
    scale = 1.0
    if setting.pop("normalize", False):
        doc["modality"] = "MR"
        doc["intensity_normalisation"] = "z_score"
        scale = float(setting.pop("normalizeScale", 1) or 1)
        if scale != 1:
            _warn(warnings, "normalizeScale", value=setting_value(scale))
        if setting.get("removeOutliers") is not None:
            _warn(warnings, "removeOutliers", value=setting.pop("removeOutliers"))
    else:
        setting.pop("normalizeScale", None)
    setting.pop("removeOutliers", None)

    spacing = setting.pop("resampledPixelSpacing", None)
    interpolator = setting.pop("interpolator", "sitkBSpline")
    if isinstance(interpolator, int) or interpolator not in INTERPOLATOR:
        raise PyRadiomicsParamsError(f"interpolator {interpolator!r}: radflow translates {sorted(INTERPOLATOR)}")
    if spacing:
        if len(spacing) != 3 or not all(isinstance(v, (int, float)) for v in spacing) or min(spacing[:2]) <= 0 \
                or spacing[2] < 0:
            raise PyRadiomicsParamsError(f"resampledPixelSpacing {spacing}: radflow needs [x, y, z] > 0 (z may be 0)")
        two_d = spacing[2] == 0  # PyRadiomics: 0 keeps that axis' spacing; IBSI 2D interpolation keeps z's
        doc["interpolation"] = {
            "enabled": True, "dimensions": "2D" if two_d else "3D",
            "spacing_mm": [spacing[0], spacing[1], None if two_d else spacing[2]],
            "image_interpolator": INTERPOLATOR[interpolator], "mask_interpolator": "nearest",
            "round_intensities": False,
        }
        _warn(warnings, "resampledPixelSpacing")

    bin_count = setting.pop("binCount", None)
    bin_width = setting.pop("binWidth", 25)
    if bin_count:
        doc["discretisation"] = {"texture": {"method": "fixed_bin_number", "n_bins": int(bin_count),
                                             "bin_width": None}}
    else:
        doc["discretisation"] = {"texture": {"method": "fixed_bin_size",
                                             "bin_width": bin_width if scale == 1 else bin_width / scale}}
        _warn(warnings, "binWidth", value=bin_width)

    reseg_range = setting.pop("resegmentRange", None)
    mode = setting.pop("resegmentMode", "absolute")
    if reseg_range is not None:
        values = list(reseg_range)
        if len(values) == 1:
            values.append(None)
        if mode == "sigma":
            if values[1] is not None and values[0] != -values[1]:
                raise PyRadiomicsParamsError(f"resegmentRange {reseg_range} in sigma mode: radflow's outlier_sigma "
                                             "is symmetric (mean +/- n SD)")
            doc["resegmentation"] = {"outlier_sigma": abs(values[0])}  # mean +/- n SD
        else:
            if mode == "relative":
                _warn(warnings, "resegmentMode")
            doc["resegmentation"] = {"range": [v / scale if v is not None and scale != 1 else v for v in values]}

    texture: dict[str, Any] = {}
    if setting.pop("force2D", False):
        texture["matrix_aggregations"] = ["2.5D, direction-merged"]
        texture["zone_aggregations"] = ["2.5D"]
        dimension = setting.pop("force2Ddimension", 0)
        if dimension != 0:
            _warn(warnings, "force2Ddimension", value=dimension)
    else:
        setting.pop("force2Ddimension", None)
        texture["matrix_aggregations"] = ["3D, averaged"]
        texture["zone_aggregations"] = ["3D"]
    distances = setting.pop("distances", [1])
    distances = [int(d) for d in (distances if isinstance(distances, list) else [distances])]
    if len(distances) > 1:
        _warn(warnings, "distances", value=distances, first=distances[0])
    texture.update(glcm_distance=distances[0], ngtdm_distance=distances[0], ngldm_distance=distances[0])
    if "symmetricalGLCM" in setting:
        texture["glcm_symmetric"] = bool(setting.pop("symmetricalGLCM"))
    if "gldm_a" in setting:
        texture["ngldm_coarseness"] = int(setting.pop("gldm_a"))
    doc["texture"] = texture

    for key, value in setting.items():
        if key in SILENT or (key == "voxelArrayShift" and not value):
            continue
        if key in NOT_COPIED:
            _warn(warnings, key, value=value)
        else:
            warnings.append(f"PyRadiomics setting {key!r} ({value}) has no radflow counterpart and was ignored")
    return doc


def _image_types(image_types: dict, warnings: list[str]) -> list[tuple[str, dict, list[str]]]:
    """(label, filter group, warnings of that filter) per image the file enables, in file order; image types
    radflow cannot compute are warned about in ``warnings``."""
    out: list[tuple[str, dict, list[str]]] = []
    for name, options in image_types.items():
        options = options or {}
        kind = name.lower()
        own: list[str] = []
        if kind == "original":
            out.append(("original", {"type": "none"}, own))
        elif kind == "log":
            sigmas = options.get("sigma")
            if not sigmas:
                raise PyRadiomicsParamsError("imageType LoG needs a 'sigma' list (mm)")
            _warn(own, "LoG")
            for sigma in sigmas if isinstance(sigmas, list) else [sigmas]:
                out.append((f"log-sigma-{float(sigma):g}mm", {"type": "laplacian_of_gaussian", "sigma_mm": sigma}, own))
        elif kind == "wavelet":
            wavelet = options.get("wavelet", "coif1")
            level = int(options.get("start_level", 0)) + 1
            if int(options.get("level", 1)) != 1:
                _warn(own, "waveletLevels", value=options["level"], first=level)
            _warn(own, "Wavelet")
            for band in WAVELET_BANDS:
                out.append((f"wavelet-{band}", {"type": "separable_wavelet", "wavelet": wavelet,
                                                "wavelet_map": band, "wavelet_level": level}, own))
        else:
            _warn(warnings, "imageType", value=name)
    if not out:
        raise PyRadiomicsParamsError(f"no image type radflow can compute in imageType {sorted(image_types)}")
    return out


def translate(params: dict) -> list[Translation]:
    """One ``Translation`` per image the PyRadiomics parameters enable (Original first when enabled)."""
    if not is_pyradiomics(params):
        raise PyRadiomicsParamsError(f"not a PyRadiomics parameter file: none of the keys {list(MARKER_KEYS)}")
    unknown = set(params) - set(MARKER_KEYS)
    if unknown:
        raise PyRadiomicsParamsError(f"unknown PyRadiomics top-level keys {sorted(unknown)}; known: {list(MARKER_KEYS)}")
    warnings: list[str] = []
    setting = params.get("setting") or {}
    common = _common(setting, warnings)
    common["families"] = _families(params.get("featureClass"), warnings)
    image_types = params.get("imageType", params.get("inputImage")) or {"Original": {}}
    translations: list[Translation] = []
    for label, filter_group, filter_warnings in _image_types(image_types, warnings):
        translations.append(Translation(label, {**common, "filter": filter_group}, warnings + filter_warnings))
    return translations


def read(path: str | Path) -> list[Translation]:
    """Parse and translate a PyRadiomics parameter file (YAML or JSON)."""
    path = Path(path)
    with path.open() as fh:
        params = yaml.safe_load(fh) or {}
    try:
        return translate(params)
    except PyRadiomicsParamsError as exc:
        raise PyRadiomicsParamsError(f"{path}: {exc}") from None
