"""`radflow extract` as a user runs it: a real subprocess, CSV out, every IBSI reference row checked."""
from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, aot_build_in_use
from ibsi_reference import IBSI, references, round3, within_tolerance

PHANTOM_ROWS = references("digital_phantom")


def run_extract(tmp_path: Path, *args: str, imports: list[str] | None = None) -> dict[tuple[str, str], float]:
    """The CSV's values by (IBSI code, aggregation); with ``imports`` (a list), the modules the process imported
    (``python -X importtime``) are appended to it."""
    out = tmp_path / "features.csv"
    flags = ["-X", "importtime"] if imports is not None else []
    result = subprocess.run([sys.executable, *flags, "-m", "radflow", "extract", *args, "--out", str(out)],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    if imports is not None:
        imports.extend(line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines()
                       if line.startswith("import time:") and not line.endswith("imported package"))
    with out.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert rows and list(rows[0]) == ["family", "feature", "ibsi_code", "aggregation", "value", "reason"]
    return {(r["ibsi_code"], r["aggregation"]): float(r["value"]) for r in rows}


@pytest.fixture(scope="module")
def phantom_run(tmp_path_factory):
    """The digital phantom's extraction with every family, and the modules its process imported."""
    if not IBSI.exists():
        pytest.skip("../shared/ibsi is absent")
    imports: list[str] = []
    values = run_extract(
        tmp_path_factory.mktemp("extract"),
        str(IBSI / "digital_phantom" / "image.nii.gz"), str(IBSI / "digital_phantom" / "mask.nii.gz"),
        "--settings", str(REPO / "config" / "ibsi" / "digital_phantom.yaml"), imports=imports,
    )
    return values, imports


@pytest.fixture(scope="module")
def phantom_csv(phantom_run):
    return phantom_run[0]


def test_extract_does_not_import_scipy(phantom_run):
    """scipy costs a small ROI's whole extraction 0.15-0.3 s of imports; with the kernels built ahead of time every
    family runs without it. A kernel using numba's ``@`` or ``np.linalg`` would import scipy.linalg's BLAS and
    LAPACK from the build, and a module importing scipy at its top would too. Just in time the check cannot hold:
    ``import numba`` itself imports scipy when it is installed."""
    aot_build_in_use()
    scipy = sorted({name for name in phantom_run[1] if name == "scipy" or name.startswith("scipy.")})
    assert not scipy, f"`radflow extract` imported {scipy[:5]}"


@pytest.mark.parametrize("ref", PHANTOM_ROWS, ids=[r.id for r in PHANTOM_ROWS])
def test_extract_reports_the_ibsi_digital_phantom_value(phantom_csv, ref):
    value = phantom_csv.get((ref.ibsi_code, ref.aggregation))
    assert value is not None, f"{ref.feature} ({ref.aggregation}) missing from the CSV"
    assert within_tolerance(value, ref), f"{ref.feature} [{ref.aggregation}]: {value} (round3 {round3(value)}) vs {ref.value}"


def test_extract_reads_a_dicom_series_and_its_rtstruct(tmp_path):
    """CT phantom from its DICOM folder + RTSTRUCT ROI GTV-1 with configuration A: the morphology and statistics
    rows of configuration A pass (the rasterised mask equals the NIfTI mask)."""
    dicom = IBSI / "ct_phantom" / "dicom"
    if not dicom.exists():
        pytest.skip("../shared/ibsi is absent")
    settings = tmp_path / "A_first_order.yaml"
    settings.write_text((REPO / "config" / "ibsi" / "A.yaml").read_text() + "families: [morphology, statistics]\n")
    values = run_extract(tmp_path, str(dicom / "image"), str(dicom / "mask" / "DCM_RS_00060.dcm"),
                         "--roi", "GTV-1", "--settings", str(settings))
    rows = references("A", family_code="HCUG") + references("A", family_code="UHIW")
    failing = [r.feature for r in rows if not within_tolerance(values[(r.ibsi_code, r.aggregation)], r)]
    assert not failing


def test_extract_refuses_an_rtstruct_drawn_in_another_frame_of_reference(tmp_path):
    """The same RTSTRUCT with its frame of reference changed (as one drawn on a retest scan, whose patient position
    differs): its coordinates do not place it on this series, so the extraction stops with the reason instead of
    rasterising it onto the wrong voxels."""
    import pydicom
    from pydicom.uid import generate_uid

    dicom = IBSI / "ct_phantom" / "dicom"
    if not dicom.exists():
        pytest.skip("../shared/ibsi is absent")
    rtstruct = pydicom.dcmread(dicom / "mask" / "DCM_RS_00060.dcm")
    other = generate_uid(entropy_srcs=["radflow test: another frame of reference"])
    for item in rtstruct.StructureSetROISequence:
        item.ReferencedFrameOfReferenceUID = other
    for item in rtstruct.ReferencedFrameOfReferenceSequence:
        item.FrameOfReferenceUID = other
    moved = tmp_path / "rtstruct_other_frame.dcm"
    rtstruct.save_as(moved)
    result = subprocess.run([sys.executable, "-m", "radflow", "extract", str(dicom / "image"), str(moved),
                             "--roi", "GTV-1", "--out", str(tmp_path / "f.csv")], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert f"radflow: error: the RTSTRUCT {moved} is drawn in another frame of reference" in result.stderr
    assert not (tmp_path / "f.csv").exists()


def test_a_study_folder_with_the_rtstruct_and_another_series_reads_the_referenced_series(tmp_path):
    """The phantom's image and mask folders in one study folder, beside a second image series (a copy under another
    SeriesInstanceUID): the RTSTRUCT's reference picks its series, and the values equal those from the series
    folder alone; with a NIfTI mask, which references nothing, the two series are named instead."""
    import shutil

    import pydicom
    from pydicom.uid import generate_uid

    import radflow
    from radflow.io import InputError

    dicom = IBSI / "ct_phantom" / "dicom"
    if not dicom.exists():
        pytest.skip("../shared/ibsi is absent")
    study = tmp_path / "study"
    shutil.copytree(dicom, study)
    other = generate_uid(entropy_srcs=["radflow test: a second series"])
    (study / "other").mkdir()
    for path in sorted((dicom / "image").iterdir()):
        ds = pydicom.dcmread(path)
        ds.SeriesInstanceUID, ds.SeriesDescription = other, "copy"
        ds.SOPInstanceUID = generate_uid(entropy_srcs=[other, path.name])
        ds.save_as(study / "other" / path.name)
    settings = {"families": ["statistics"]}
    rtstruct = study / "mask" / "DCM_RS_00060.dcm"
    from_study = radflow.extract(study, rtstruct, settings, roi="GTV-1")
    from_series = radflow.extract(dicom / "image", dicom / "mask" / "DCM_RS_00060.dcm", settings, roi="GTV-1")
    assert from_study.equals(from_series)
    with pytest.raises(InputError, match=r"holds 2 image series \(CT .*, 60 file\(s\); CT copy, 60 file\(s\)\): give "
                                         r"the folder of one of them"):
        radflow.extract(study, IBSI / "ct_phantom" / "nifti" / "mask.nii.gz", settings)


@pytest.mark.filterwarnings("ignore:The string .* is unlikely to represent the intended person name")
def test_an_enhanced_multi_frame_file_is_read_like_its_series_folder(tmp_path):
    """One enhanced (legacy-converted) CT file given as the image: radflow's reader, as for a folder. ITK's reader
    took the stored frame order and the first frame's position (origin 46 mm off on the demo CT, voxels up to 937 HU
    apart) and changed four morphology values without a word. One plain slice file is refused."""
    import highdicom as hd
    import pydicom
    from pydicom.uid import generate_uid

    import radflow
    from radflow.io import InputError

    dicom = IBSI / "ct_phantom" / "dicom"
    if not dicom.exists():
        pytest.skip("../shared/ibsi is absent")
    slices = [pydicom.dcmread(p) for p in sorted((dicom / "image").iterdir())]
    multi = hd.legacy.LegacyConvertedEnhancedCTImage(
        slices[::-1], series_instance_uid=slices[0].SeriesInstanceUID, series_number=int(slices[0].SeriesNumber or 1),
        sop_instance_uid=generate_uid(entropy_srcs=["radflow test: enhanced phantom"]), instance_number=1)
    multi.save_as(tmp_path / "enhanced.dcm")
    rtstruct = dicom / "mask" / "DCM_RS_00060.dcm"
    settings = {"families": ["morphology", "statistics"]}
    from_file = radflow.extract(tmp_path / "enhanced.dcm", rtstruct, settings, roi="GTV-1")
    from_folder = radflow.extract(dicom / "image", rtstruct, settings, roi="GTV-1")
    assert from_file.equals(from_folder)
    with pytest.raises(InputError, match="is a single DICOM slice: give the folder of its series"):
        radflow.extract(sorted((dicom / "image").iterdir())[0], rtstruct, settings, roi="GTV-1")
