"""IBSI self-test of the installed feature engine: how many of the IBSI-1 digital-phantom reference values it
reproduces, computed once per installed code version and cached, so an export can state that the exact code that
produced its values reproduces IBSI.

The phantom and its reference values are not shipped with radflow (``../shared/ibsi`` beside the repository, or any
folder with ``digital_phantom/{image,mask}.nii.gz`` and ``reference/ibsi1_reference_values.csv``). A value passes as
IBSI judges it: ``|round3(value) - reference| <= tolerance``, round3 rounding to 3 significant digits.
"""
from __future__ import annotations

import csv
import hashlib
import json
import math
import os
from importlib import metadata
from pathlib import Path

from radflow import __version__
from radflow.pipeline.store import sha256_of

PACKAGE = Path(__file__).resolve().parents[1]
SETTINGS = PACKAGE.parents[1] / "config" / "ibsi" / "digital_phantom.yaml"


def round3(value: float) -> float:
    if value == 0 or not math.isfinite(value):
        return value
    return round(value, 2 - int(math.floor(math.log10(abs(value)))))


def within_tolerance(value: float, reference: float, tolerance: float) -> bool:
    return math.isfinite(value) and abs(round3(value) - reference) <= tolerance + 1e-12


def engine_digest() -> str:
    """sha256 of the package source and the numeric libraries' versions: what decides the feature values."""
    digest = hashlib.sha256(f"radflow {__version__}\n".encode())
    for package in ("numpy", "numba", "scipy", "SimpleITK", "scikit-image"):
        try:
            digest.update(f"{package} {metadata.version(package)}\n".encode())
        except metadata.PackageNotFoundError:
            continue
    for path in sorted(PACKAGE.rglob("*.py")) + [SETTINGS]:
        digest.update(f"{path.relative_to(PACKAGE.parent) if path.is_relative_to(PACKAGE.parent) else path.name}"
                      f" {sha256_of(path)}\n".encode())
    return digest.hexdigest()


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "radflow" / "ibsi_self_test"


def run_self_test(ibsi_dir: Path) -> dict:
    """Compute every digital-phantom feature and compare it with the IBSI reference values."""
    import SimpleITK as sitk

    from radflow.features import engine, registry
    from radflow.imaging.preprocess import prepare
    from radflow.settings import Settings

    with open(ibsi_dir / "reference" / "ibsi1_reference_values.csv", newline="") as fh:
        references = [row for row in csv.DictReader(fh)
                      if row["configuration"] == "digital_phantom" and row["is_diagnostic"] != "True"]
    settings = Settings.from_yaml(SETTINGS)
    roi = prepare(sitk.ReadImage(str(ibsi_dir / "digital_phantom" / "image.nii.gz")),
                  sitk.ReadImage(str(ibsi_dir / "digital_phantom" / "mask.nii.gz")), settings)
    computed = {}
    for family in sorted({registry.info(row["ibsi_code"]).family for row in references}):
        for value in engine.family_module(family).compute(roi, settings):
            computed[(value.ibsi_code, value.aggregation)] = value.value
    passed = sum(within_tolerance(computed.get((row["ibsi_code"], row["aggregation"]), math.nan),
                                  float(row["reference_value"]), float(row["tolerance"])) for row in references)
    return {"phantom": "IBSI-1 digital phantom", "references": len(references), "passed": int(passed),
            "settings_sha256": sha256_of(SETTINGS), "reference_sha256": sha256_of(
                ibsi_dir / "reference" / "ibsi1_reference_values.csv")}


def self_test(ibsi_dir: Path | None) -> dict | None:
    """The cached result for the installed engine, computed at the first call; None without the IBSI material."""
    if ibsi_dir is None or not (Path(ibsi_dir) / "digital_phantom" / "image.nii.gz").is_file() or not SETTINGS.is_file():
        return None
    digest = engine_digest()
    cached = cache_dir() / f"{digest}.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    result = {**run_self_test(Path(ibsi_dir)), "engine_digest": digest}
    cached.parent.mkdir(parents=True, exist_ok=True)
    partial = cached.with_suffix(".partial")
    partial.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    partial.replace(cached)
    return result
