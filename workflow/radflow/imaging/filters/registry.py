"""The filter registry and the ``filter`` settings group (IBSI-2 terms) as a validated, immutable ``FilterSpec``.

Every filter is one module that declares a ``FILTER = FilterKind(...)``: its name (the settings ``type``), its own
settings keys with their defaults, a check of their values, its support radius and its apply function.
``BUILT_IN_FILTERS`` lists those modules, one line each; ``register_module`` adds another at run time (a plug-in,
or a test's toy filter). Compared with PyRadiomics' ``get<Name>Image`` discovery by name and MIRP's generic filter
class, an explicit list keeps the set of filters, and so the settings keys that every document hashes, visible in
one place.

The settings group is flat: the common keys (``COMMON_PARAMETERS``) and the union of every registered filter's keys,
all of them in every document (and so in ``settings_id``), whichever filter is chosen. Two filters may share a key
(``sigma_mm`` for LoG and Gabor) if they agree on its default. A key of another filter set away from its default is
an error (a typo, or a setting that would silently do nothing); with ``type: none`` every other key is ignored.

Angles (``gabor_theta``, ``gabor_delta_theta``) are radians; the settings may spell them as IBSI tables do
("pi/4", "5*pi/4", "3pi/2"), and ``normalise`` turns those into floats so that both spellings hash alike.
"""
from __future__ import annotations

import copy
import importlib
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from radflow.imaging.filters.boundary import BOUNDARY_CONDITIONS

Spacing = tuple[float, float, float]
Radius = tuple[int, int, int]

# One line per filter: the module that declares its ``FILTER``.
BUILT_IN_FILTERS = (
    "radflow.imaging.filters.mean",
    "radflow.imaging.filters.log",
    "radflow.imaging.filters.laws",
    "radflow.imaging.filters.gabor",
    "radflow.imaging.filters.wavelets",
    "radflow.imaging.filters.simoncelli",
)

# Keys of every filter ("none": no filtering, the other keys are then ignored but still hashed).
COMMON_PARAMETERS: dict[str, Any] = {
    "type": "none",
    "dimensions": "3D",  # 2D: slice-wise in the axial plane; 3D: volumetric
    "boundary_condition": "mirror",  # zero | nearest | periodic | mirror
}
DIMENSIONS = ("2D", "3D")


class FilterSettingsError(ValueError):
    """A filter settings group that does not describe a valid filter."""


def require(condition: bool, message: str) -> None:
    """For a filter's ``validate``: raise ``FilterSettingsError(message)`` unless ``condition``."""
    if not condition:
        raise FilterSettingsError(message)


@dataclass(frozen=True)
class FilterSpec:
    """A validated filter: the common keys as fields, the chosen filter's own keys as attributes
    (``spec.sigma_mm``), read from ``parameters``."""

    type: str = "none"
    dimensions: str = "3D"
    boundary_condition: str = "mirror"
    parameters: tuple[tuple[str, Any], ...] = ()

    def __getattr__(self, name: str) -> Any:
        if name != "parameters" and not name.startswith("__"):  # copy and pickle probe before fields exist
            for key, value in self.parameters:
                if key == name:
                    return value
        raise AttributeError(f"filter {self.type!r} has no parameter {name!r}")

    @property
    def active(self) -> bool:
        return self.type != "none"

    @property
    def axes(self) -> tuple[int, ...]:
        """Filtered array axes of (z, y, x) arrays."""
        return (1, 2) if self.dimensions == "2D" else (0, 1, 2)

    @property
    def kind(self) -> FilterKind:
        return registered()[self.type]

    @classmethod
    def from_settings(cls, group: Mapping[str, Any]) -> FilterSpec:
        """The spec of a ``filter`` settings group (missing keys take their defaults); ``FilterSettingsError``
        (a ValueError) says what is wrong."""
        kinds = registered()
        known = _defaults()  # read only here (values are frozen below): spares two deep copies per prepare()
        values = dict(known, **normalise(group))
        unknown = set(values) - set(known)
        if unknown:
            raise FilterSettingsError(f"unknown filter keys {sorted(unknown)}")
        name = values["type"]
        if name not in kinds:
            raise FilterSettingsError(f"filter ({name}): type must be one of {tuple(kinds)}")
        kind = kinds[name]
        spec = cls(name, values["dimensions"], values["boundary_condition"],
                   tuple((key, _frozen(values[key])) for key in kind.parameters))
        if not spec.active:
            return spec
        try:
            require(spec.dimensions in DIMENSIONS, "dimensions must be 2D or 3D")
            require(spec.boundary_condition in BOUNDARY_CONDITIONS,
                    f"boundary_condition must be one of {BOUNDARY_CONDITIONS}")
            foreign = sorted(key for key, default in known.items()
                             if key not in COMMON_PARAMETERS and key not in kind.parameters and values[key] != default)
            require(not foreign, f"{', '.join(foreign)} do(es) not apply to this filter; its keys: "
                                 f"{sorted(kind.parameters)}")
            kind.validate(spec)
        except (ValueError, TypeError) as exc:
            raise FilterSettingsError(f"filter ({name}): {exc}") from None
        return spec


@dataclass(frozen=True)
class FilterKind:
    """What a filter module declares.

    name            the settings ``type``.
    parameters      its own settings keys and their defaults (beyond ``COMMON_PARAMETERS``).
    apply           (image (z, y, x) float64, spacing (z, y, x) mm, spec) -> response map, same shape, float64.
    support_radius  (spec, spacing) -> voxels per axis (z, y, x) beyond a region that the response there depends
                    on (a chain of stages: their radii add up); None when it needs the whole image (Fourier-domain).
    validate        (spec) -> None, raising ValueError (``require``) for invalid values; common keys are checked
                    before.
    """

    name: str
    parameters: Mapping[str, Any]
    apply: Callable[[np.ndarray, Spacing, FilterSpec], np.ndarray]
    support_radius: Callable[[FilterSpec, Spacing], Radius | None]
    validate: Callable[[FilterSpec], None] = field(default=lambda spec: None)


def radius_on_axes(spec: FilterSpec, per_axis: int) -> Radius:
    """For a filter's ``support_radius``: ``per_axis`` voxels on every filtered axis, 0 on the others."""
    radius = [0, 0, 0]
    for axis in spec.axes:
        radius[axis] = per_axis
    return (radius[0], radius[1], radius[2])


def _copy_image(image: np.ndarray, spacing: Spacing, spec: FilterSpec) -> np.ndarray:
    return image.copy()


NO_FILTER = FilterKind("none", {}, apply=_copy_image, support_radius=lambda spec, spacing: (0, 0, 0))

_REGISTRY: dict[str, FilterKind] = {}


def registered() -> dict[str, FilterKind]:
    """Every filter kind by name: "none", the built-in filters in ``BUILT_IN_FILTERS`` order, then plug-ins."""
    if not _REGISTRY:
        _REGISTRY["none"] = NO_FILTER
        for module in BUILT_IN_FILTERS:
            register_module(module)
    return _REGISTRY


def register(kind: FilterKind) -> FilterKind:
    """Add a filter kind; its keys must not clash with another filter's (a shared key must share its default)."""
    kinds = registered()
    if kind.name in kinds:
        raise ValueError(f"a filter named {kind.name!r} is already registered")
    for key, default in kind.parameters.items():
        if key in COMMON_PARAMETERS:
            raise ValueError(f"filter {kind.name!r}: {key!r} is a common filter key, not a filter's own")
        for other in kinds.values():
            if key in other.parameters and other.parameters[key] != default:
                raise ValueError(f"filter {kind.name!r}: {key!r} defaults to {default!r}, "
                                 f"filter {other.name!r} to {other.parameters[key]!r}")
    kinds[kind.name] = kind
    _defaults.cache_clear()
    return kind


def register_module(module_name: str) -> FilterKind:
    """Import ``module_name`` and register the ``FILTER`` it declares."""
    return register(importlib.import_module(module_name).FILTER)


def unregister(name: str) -> None:
    """Remove a plug-in filter (built-in filters stay)."""
    if name == "none" or any(importlib.import_module(m).FILTER.name == name for m in BUILT_IN_FILTERS):
        raise ValueError(f"{name!r} is a built-in filter")
    del registered()[name]
    _defaults.cache_clear()


def filter_types() -> tuple[str, ...]:
    return tuple(registered())


@cache
def _defaults() -> dict[str, Any]:
    merged = dict(COMMON_PARAMETERS)
    for kind in registered().values():
        merged.update(kind.parameters)
    return merged


def defaults() -> dict[str, Any]:
    """The ``filter`` settings group with every registered key at its default (a fresh dict)."""
    return copy.deepcopy(_defaults())


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


_ANGLE = re.compile(r"^\s*([0-9.]+)?\s*\*?\s*pi\s*(?:/\s*([0-9.]+))?\s*$")


def parse_angle(value: Any) -> float | None:
    """Radians from a number or an IBSI-style string such as "pi/4", "5*pi/4", "3pi/2"."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if value is None else float(value)
    match = _ANGLE.match(str(value))
    if not match:
        raise ValueError(f"angle {value!r} must be a number of radians or like 'pi/4', '5*pi/4'")
    numerator = float(match.group(1)) if match.group(1) else 1.0
    denominator = float(match.group(2)) if match.group(2) else 1.0
    return numerator * math.pi / denominator


def normalise(group: Mapping[str, Any]) -> dict[str, Any]:
    """The group with angles as radians (floats), so that equivalent spellings hash alike."""
    out = dict(group)
    for key in ("gabor_theta", "gabor_delta_theta"):
        if key in out:
            out[key] = parse_angle(out[key])
    return out
