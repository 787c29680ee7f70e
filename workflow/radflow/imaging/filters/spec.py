"""The ``filter`` settings group (IBSI-2 terms) as a validated, immutable ``FilterSpec``.

Angles (``gabor_theta``, ``gabor_delta_theta``) are radians; the settings may spell them as IBSI tables do
("pi/4", "5*pi/4", "3pi/2"), and ``normalise`` turns those into floats so that both spellings hash alike.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields

from radflow.imaging.filters.boundary import BOUNDARY_CONDITIONS
from radflow.imaging.filters.rotations import POOLINGS

FILTER_TYPES = ("none", "mean", "laplacian_of_gaussian", "laws", "gabor", "separable_wavelet", "simoncelli")
FOURIER_TYPES = ("simoncelli",)  # defined by a transfer function: need the whole image (so does a Riesz order)

# The settings group with its defaults ("none": no filtering, the other keys are then ignored but still hashed).
DEFAULT_FILTER: dict = {
    "type": "none",
    "dimensions": "3D",  # 2D: slice-wise in the axial plane; 3D: volumetric
    "boundary_condition": "mirror",  # zero | nearest | periodic | mirror
    "support_voxels": 5,  # mean filter: M
    "sigma_mm": None,  # LoG and Gabor sigma*
    "cutoff_sigma": 4.0,  # LoG / Gabor kernel truncation, in sigmas
    "laws_kernel": None,  # e.g. "L5E5E5" (x, y, z order)
    "energy_map": False,  # Laws texture-energy map
    "energy_delta_voxels": 7,
    "gabor_lambda_mm": None,
    "gabor_gamma": 1.0,
    "gabor_theta": 0.0,  # radians, or "pi/3"
    "gabor_delta_theta": None,  # radians: pool over theta = k * delta_theta
    "orthogonal_planes": False,  # Gabor: average the axial, coronal and sagittal 2D responses
    "wavelet": None,  # PyWavelets name: haar, db3, coif1, ...
    "wavelet_map": None,  # separable sub-band, e.g. "LLH" (x, y, z order)
    "wavelet_level": 1,  # separable wavelet / Simoncelli decomposition level
    "riesz_order": None,  # Riesz transform of the LoG / Simoncelli response, e.g. [1, 0, 0] (x, y, z order)
    "rotation_invariance": False,  # Laws / separable wavelets: pool over the right-angle rotations
    "pooling": None,  # max | average | min (rotation invariance, Gabor orientations)
}

_ANGLE = re.compile(r"^\s*([0-9.]+)?\s*\*?\s*pi\s*(?:/\s*([0-9.]+))?\s*$")


def parse_angle(value) -> float | None:
    """Radians from a number or an IBSI-style string such as "pi/4", "5*pi/4", "3pi/2"."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if value is None else float(value)
    match = _ANGLE.match(str(value))
    if not match:
        raise ValueError(f"angle {value!r} must be a number of radians or like 'pi/4', '5*pi/4'")
    numerator = float(match.group(1)) if match.group(1) else 1.0
    denominator = float(match.group(2)) if match.group(2) else 1.0
    return numerator * math.pi / denominator


@dataclass(frozen=True)
class FilterSpec:
    type: str = "none"
    dimensions: str = "3D"
    boundary_condition: str = "mirror"
    support_voxels: int = 5
    sigma_mm: float | None = None
    cutoff_sigma: float = 4.0
    laws_kernel: str | None = None
    energy_map: bool = False
    energy_delta_voxels: int = 7
    gabor_lambda_mm: float | None = None
    gabor_gamma: float = 1.0
    gabor_theta: float = 0.0
    gabor_delta_theta: float | None = None
    orthogonal_planes: bool = False
    wavelet: str | None = None
    wavelet_map: str | None = None
    wavelet_level: int = 1
    riesz_order: tuple[int, ...] | None = None
    rotation_invariance: bool = False
    pooling: str | None = None

    @property
    def active(self) -> bool:
        return self.type != "none"

    @property
    def axes(self) -> tuple[int, ...]:
        """Filtered array axes of (z, y, x) arrays."""
        return (1, 2) if self.dimensions == "2D" else (0, 1, 2)

    @classmethod
    def from_settings(cls, group: dict) -> "FilterSpec":
        group = normalise(group)
        unknown = set(group) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"unknown filter keys {sorted(unknown)}")
        values = dict(group)
        if values.get("riesz_order") is not None:
            values["riesz_order"] = tuple(int(v) for v in values["riesz_order"])
        spec = cls(**values)
        spec.validate()
        return spec

    def validate(self) -> None:
        def need(condition: bool, message: str) -> None:
            if not condition:
                raise ValueError(f"filter ({self.type}): {message}")

        need(self.type in FILTER_TYPES, f"type must be one of {FILTER_TYPES}")
        if not self.active:
            return
        need(self.dimensions in ("2D", "3D"), "dimensions must be 2D or 3D")
        need(self.boundary_condition in BOUNDARY_CONDITIONS, f"boundary_condition must be one of {BOUNDARY_CONDITIONS}")
        need(self.pooling is None or self.pooling in POOLINGS, f"pooling must be one of {POOLINGS}")
        pooled = self.rotation_invariance or (self.type == "gabor" and self.gabor_delta_theta is not None)
        need(not pooled or self.pooling is not None, "rotation invariance needs a pooling (max, average or min)")
        need(self.rotation_invariance is False or self.type in ("laws", "separable_wavelet"),
             "rotation_invariance applies to laws and separable_wavelet (Gabor: gabor_delta_theta)")
        need(self.riesz_order is None or self.type in ("laplacian_of_gaussian", "simoncelli"),
             "riesz_order applies to laplacian_of_gaussian and simoncelli")
        if self.riesz_order is not None:
            from radflow.imaging.filters.riesz import check_order

            need(len(self.riesz_order) == len(self.axes), f"riesz_order needs {len(self.axes)} entries (x, y, z order)")
            check_order(self.riesz_order)
        if self.type == "mean":
            need(int(self.support_voxels) >= 1 and int(self.support_voxels) % 2 == 1, "support_voxels must be odd")
        if self.type in ("laplacian_of_gaussian", "gabor"):
            need(self.sigma_mm is not None and self.sigma_mm > 0, "sigma_mm must be > 0")
            need(self.cutoff_sigma > 0, "cutoff_sigma must be > 0")
        if self.type == "laws":
            from radflow.imaging.filters.laws import parse_kernel

            need(self.laws_kernel is not None, "laws_kernel is required, e.g. L5E5E5")
            parse_kernel(self.laws_kernel, len(self.axes))
            need(int(self.energy_delta_voxels) >= 0, "energy_delta_voxels must be >= 0")
        if self.type == "gabor":
            need(self.gabor_lambda_mm is not None and self.gabor_lambda_mm > 0, "gabor_lambda_mm must be > 0")
            need(self.gabor_gamma > 0, "gabor_gamma must be > 0")
            need(self.gabor_delta_theta is None or self.gabor_delta_theta > 0, "gabor_delta_theta must be > 0")
            need(self.dimensions == "2D", "Gabor is a 2D (in-plane) filter; use orthogonal_planes for 3D")
        if self.type in ("separable_wavelet", "simoncelli"):
            need(int(self.wavelet_level) >= 1, "wavelet_level must be >= 1")
        if self.type == "separable_wavelet":
            from radflow.imaging.filters.wavelets import parse_band, wavelet_filters

            need(self.wavelet is not None, "wavelet is required, e.g. haar, db3, coif1")
            wavelet_filters(self.wavelet)
            need(self.wavelet_map is not None, "wavelet_map is required, e.g. LLH")
            parse_band(self.wavelet_map, len(self.axes))


def normalise(group: dict) -> dict:
    """The group with angles as radians (floats), so that equivalent spellings hash alike."""
    out = dict(group)
    for key in ("gabor_theta", "gabor_delta_theta"):
        if key in out:
            out[key] = parse_angle(out[key])
    return out
