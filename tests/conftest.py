from __future__ import annotations

import os
from pathlib import Path

import pytest
import SimpleITK as sitk

from ibsi_reference import IBSI

REPO = Path(__file__).resolve().parents[1]


def aot_build_in_use() -> bool:
    """True when the ahead-of-time kernel build is loaded; otherwise the test skips with the reason (and fails under
    CI, whose .ci/run builds the kernels first)."""
    from radflow.compiled import dispatch as kernels

    if not kernels._build().modules:
        reason = kernels.status()
        if os.environ.get("CI"):
            pytest.fail(f"CI runs with the ahead-of-time kernels built (.ci/run), but: {reason}")
        pytest.skip(reason)
    return True


def _need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"{path} is absent: the IBSI material lives in ../shared beside the repository (CI has it)")
    return path


@pytest.fixture(scope="session")
def digital_phantom() -> tuple[sitk.Image, sitk.Image]:
    folder = _need(IBSI / "digital_phantom")
    return sitk.ReadImage(str(folder / "image.nii.gz")), sitk.ReadImage(str(folder / "mask.nii.gz"))


@pytest.fixture(scope="session")
def ct_phantom() -> tuple[sitk.Image, sitk.Image]:
    folder = _need(IBSI / "ct_phantom" / "nifti")
    return sitk.ReadImage(str(folder / "image.nii.gz")), sitk.ReadImage(str(folder / "mask.nii.gz"))


@pytest.fixture(scope="session")
def digital_phantom_roi(digital_phantom):
    from radflow.imaging.preprocess import prepare
    from radflow.settings import Settings

    settings = Settings.from_yaml(REPO / "config" / "ibsi" / "digital_phantom.yaml")
    return prepare(*digital_phantom, settings), settings
