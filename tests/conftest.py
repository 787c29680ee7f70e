from __future__ import annotations

from pathlib import Path

import pytest
import SimpleITK as sitk

from ibsi_reference import IBSI

REPO = Path(__file__).resolve().parents[1]


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
