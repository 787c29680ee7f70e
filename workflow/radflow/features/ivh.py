"""Intensity-volume histogram features (IBSI family P88C, IBSI 4.5) of the intensity mask.

The IVH has its own discretisation (``settings["discretisation"]["ivh"]``), giving each voxel a discretised
intensity X_d,gl on a grid of step w_d, and a total range G = [min G, max G]:

* ``none`` (discrete calibrated intensities, e.g. CT HU): X_d,gl = X, w_d = 1; G is the re-segmentation range, an
  open end replaced by the ROI minimum/maximum, and [min X, max X] without a range. The intensities must be integers.
* ``fixed_bin_size`` (continuous calibrated intensities, e.g. PET SUV): bins of width w_b from X_min (the setting's
  ``lower_bound``, else the re-segmentation range's lower bound, else min X); X_d,gl is the bin centre
  X_min + (X_d - 0.5) w_b, w_d = w_b and G = [X_min + w_b/2, X_max - w_b/2] with X_max the range's upper bound
  (else max X). A voxel at X_max itself falls in the bin above G, whose intensity fraction is then slightly above 1.
* ``fixed_bin_number`` (arbitrary units, e.g. MR): N_g bins over [min X, max X], X_d,gl = X_d (the bin number),
  w_d = 1 and G = [1, N_g].

On the grid i = min G, min G + w_d, ... (intensities absent from the ROI included) the volume fraction is
nu_i = 1 - 1/N_v sum_k [X_d,gl,k < i] and the intensity fraction gamma_i = (i - min G) / (max G - min G).
All of it is one ``bincount`` of the voxels' grid indices and one cumulative sum.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from radflow.features.base import NO_AGGREGATION, FeatureValue, RoiData
from radflow.imaging import discretisation
from radflow.settings import Settings

# A grid this long means intensities far from what the discretisation was configured for (e.g. 'none' on a
# floating-point image in arbitrary units); fail with advice rather than allocate gigabytes.
_MAX_GRID = 1 << 24


@dataclass(frozen=True)
class IntensityVolumeHistogram:
    """The IVH on its grid: ``intensities`` i_j = first + j * step, their ``volume_fraction`` nu_j and
    ``intensity_fraction`` gamma_j (NaN when G has no width); ``n_present`` distinct discretised intensities in the ROI."""

    intensities: np.ndarray
    volume_fraction: np.ndarray
    intensity_fraction: np.ndarray
    step: float
    n_present: int

    @classmethod
    def from_grid_indices(cls, index: np.ndarray, first: float, step: float, n_grid: int, g_range: tuple[float, float]):
        """From each voxel's 0-based grid index j (X_d,gl = first + j * step) and the total range G."""
        if index.min() < 0:
            raise discretisation.DiscretisationError("ROI intensities lie below the IVH range G")
        n_grid = max(int(n_grid), int(index.max()) + 1)
        if n_grid > _MAX_GRID:
            raise discretisation.DiscretisationError(
                f"the intensity-volume histogram would need {n_grid} bins; use fixed_bin_size or fixed_bin_number "
                "for the IVH discretisation of these intensities"
            )
        counts = np.bincount(index, minlength=n_grid)
        below = np.concatenate(([0], np.cumsum(counts)[:-1]))  # voxels with a discretised intensity below i_j
        intensities = first + step * np.arange(n_grid, dtype=np.float64)
        g_min, g_max = g_range
        if g_max > g_min:
            gamma = (intensities - g_min) / (g_max - g_min)
        else:
            gamma = np.full(n_grid, math.nan)
        return cls(intensities, 1.0 - below / index.size, gamma, float(step), int(np.count_nonzero(counts)))

    @property
    def has_intensity_fractions(self) -> bool:
        return not math.isnan(self.intensity_fraction[0])


def _range_or_roi(values: np.ndarray, value_range) -> tuple[float, float]:
    low, high = (None, None) if value_range is None else value_range
    return (float(values.min()) if low is None else float(low), float(values.max()) if high is None else float(high))


def build(values: np.ndarray, ivh_settings: dict, resegmentation_range=None) -> IntensityVolumeHistogram:
    """The IVH of the ROI intensities ``values`` under one IVH discretisation setting group (IBSI 4.5)."""
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise discretisation.DiscretisationError("cannot build an intensity-volume histogram of an empty ROI")
    method = ivh_settings["method"]
    everywhere = np.ones(values.shape, dtype=bool)
    if method == "none":
        if not np.array_equal(values, np.floor(values)):
            raise discretisation.DiscretisationError(
                "IVH discretisation 'none' needs discrete (integer) intensities such as CT HU; set "
                "discretisation.ivh.method to fixed_bin_size (calibrated, e.g. PET SUV) or fixed_bin_number "
                "(arbitrary units, e.g. MR), as config/settings/pet_suv.yaml and mr_zscore_fbn32.yaml do"
            )
        g_min, g_max = _range_or_roi(values, resegmentation_range)
        index = np.floor(values - g_min).astype(np.int64)
        return IntensityVolumeHistogram.from_grid_indices(index, g_min, 1.0, math.floor(g_max - g_min) + 1, (g_min, g_max))
    if method == "fixed_bin_size":
        width = float(ivh_settings["bin_width"])
        x_min, x_max = _range_or_roi(values, resegmentation_range)
        if ivh_settings.get("lower_bound") is not None:
            x_min = float(ivh_settings["lower_bound"])
        levels, _ = discretisation.fixed_bin_size(values, everywhere, width, x_min)
        full_bins = math.floor((x_max - x_min) / width)  # bins wholly inside [X_min, X_max]: their centres span G
        g_range = (x_min + 0.5 * width, x_max - 0.5 * width)
        return IntensityVolumeHistogram.from_grid_indices(levels - 1, x_min + 0.5 * width, width, full_bins, g_range)
    if method == "fixed_bin_number":
        n_bins = int(ivh_settings["n_bins"])
        levels, _ = discretisation.fixed_bin_number(values, everywhere, n_bins)
        return IntensityVolumeHistogram.from_grid_indices(levels - 1, 1.0, 1.0, n_bins, (1.0, float(n_bins)))
    raise discretisation.DiscretisationError(f"unknown IVH discretisation method {method!r}")


def volume_at_intensity_fraction(ivh: IntensityVolumeHistogram, x: float) -> float:
    """Volume fraction at intensity fraction x (V_x; NK6P for x = 0.1, 4279 for x = 0.9): the largest nu_i with
    gamma_i >= x, i.e. nu at the first grid intensity with gamma_i >= x (nu does not increase with i).
    NaN when the intensity fractions are undefined (G without width)."""
    if not ivh.has_intensity_fractions:
        return math.nan
    return float(ivh.volume_fraction[np.argmax(ivh.intensity_fraction >= x)])


def intensity_at_volume_fraction(ivh: IntensityVolumeHistogram, x: float) -> float:
    """Intensity at volume fraction x (I_x; PWN1 for x = 0.1, BOHI for x = 0.9): the smallest grid intensity i
    with nu_i <= x. When even the highest grid intensity holds more than x of the volume, the next grid intensity
    (where nu = 0) is returned."""
    at_most = ivh.volume_fraction <= x
    if not at_most.any():
        return float(ivh.intensities[-1] + ivh.step)
    return float(ivh.intensities[np.argmax(at_most)])


def area_under_curve(ivh: IntensityVolumeHistogram) -> float:
    """Area under the IVH curve (9CMM): the trapezoidal integral of nu over gamma on the grid; 0 when the ROI holds
    a single discretised intensity (IBSI). IBSI gives no reference value for configurations A and B."""
    if ivh.n_present == 1:
        return 0.0
    if not ivh.has_intensity_fractions:
        return math.nan
    return float(np.trapezoid(ivh.volume_fraction, ivh.intensity_fraction))


_NO_RANGE = "the IVH intensity range G has no width, so intensity fractions are undefined"


def features(ivh: IntensityVolumeHistogram) -> list[FeatureValue]:
    """The seven IVH features, in IBSI document order."""
    v10, v90 = volume_at_intensity_fraction(ivh, 0.10), volume_at_intensity_fraction(ivh, 0.90)
    i10, i90 = intensity_at_volume_fraction(ivh, 0.10), intensity_at_volume_fraction(ivh, 0.90)
    rows = [
        ("NK6P", v10, _NO_RANGE),
        ("4279", v90, _NO_RANGE),
        ("PWN1", i10, ""),
        ("BOHI", i90, ""),
        ("WITY", v10 - v90, _NO_RANGE),  # volume fraction difference V_10 - V_90
        ("JXJA", i10 - i90, ""),  # intensity difference I_10 - I_90
        ("9CMM", area_under_curve(ivh), _NO_RANGE),
    ]
    return [
        FeatureValue.undefined(code, NO_AGGREGATION, reason) if math.isnan(value) else FeatureValue(code, NO_AGGREGATION, value)
        for code, value, reason in rows
    ]


def compute(roi: RoiData, settings: Settings) -> list[FeatureValue]:
    """The intensity-volume histogram features of the intensities inside ``roi.int_mask``."""
    ivh = build(roi.intensities, settings["discretisation"]["ivh"], settings["resegmentation"]["range"])
    return features(ivh)
