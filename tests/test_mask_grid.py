"""A mask file on the image's voxels in another orientation, axis order or sub-box gives the same features; a mask
on another grid, reaching outside the image, or holding several labels is refused with a clear error (the IBSI
digital phantom, written and read back as NIfTI)."""
from __future__ import annotations

import csv
import math
import subprocess
import sys
import warnings

import numpy as np
import pytest
import SimpleITK as sitk

import radflow
from conftest import REPO
from ibsi_reference import IBSI
from radflow.imaging import mask_grid
from radflow.io import FractionalMaskWarning, InputError

PHANTOM = IBSI / "digital_phantom"
SETTINGS = REPO / "config" / "ibsi" / "digital_phantom.yaml"


@pytest.fixture(scope="module")
def phantom():
    if not PHANTOM.exists():
        pytest.skip("../shared/ibsi is absent")
    image = sitk.ReadImage(str(PHANTOM / "image.nii.gz"))
    mask = sitk.ReadImage(str(PHANTOM / "mask.nii.gz"))
    # an oblique, anisotropic grid away from the origin, so that a wrong index map cannot pass by symmetry
    direction = sitk.VersorTransform((0.3, -0.5, 0.8), 0.4).GetMatrix()
    for volume in (image, mask):
        volume.SetOrigin((12.5, -40.0, 7.25))
        volume.SetDirection(direction)
    return image, mask


@pytest.fixture(scope="module")
def reference_values(phantom):
    return _values(radflow.extract(*phantom, SETTINGS))


def _values(frame) -> list[float]:
    return [float(v) for v in frame["value"]]


def _same(got: list[float], want: list[float]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert a == b or (math.isnan(a) and math.isnan(b))


def _written(volume: sitk.Image, path) -> str:
    sitk.WriteImage(volume, str(path))
    return str(path)


@pytest.mark.parametrize("arrange", [
    pytest.param(lambda m: sitk.Flip(m, [True, False, False]), id="flipped-x"),
    pytest.param(lambda m: sitk.Flip(m, [False, True, True]), id="flipped-yz"),
    pytest.param(lambda m: sitk.PermuteAxes(m, [2, 0, 1]), id="axes-permuted"),
    pytest.param(lambda m: sitk.PermuteAxes(sitk.Flip(m, [True, False, True]), [1, 2, 0]), id="flipped-permuted"),
    pytest.param(lambda m: sitk.ConstantPad(m, (2, 0, 1), (0, 3, 1)), id="larger-with-empty-margin"),
])
def test_the_same_voxels_in_another_arrangement_give_the_same_features(phantom, reference_values, tmp_path, arrange):
    image, mask = phantom
    moved = arrange(mask)
    assert moved.GetSize() != mask.GetSize() or moved.GetDirection() != mask.GetDirection()
    image_path, mask_path = _written(image, tmp_path / "image.nii.gz"), _written(moved, tmp_path / "mask.nii.gz")
    _same(_values(radflow.extract(image_path, mask_path, SETTINGS)), reference_values)  # through the file reader
    _same(_values(radflow.extract(image, moved, SETTINGS)), reference_values)  # SimpleITK images


def test_a_mask_cut_to_a_box_of_the_image(phantom, tmp_path):
    """A mask saved as the box around its ROI (its origin that box's first voxel) is that box of the image."""
    image, mask = phantom
    padded_image = sitk.ConstantPad(image, (2, 1, 3), (1, 2, 2), -50.0)
    padded_mask = sitk.ConstantPad(mask, (2, 1, 3), (1, 2, 2), 0)
    want = _values(radflow.extract(padded_image, padded_mask, SETTINGS))
    image_path = _written(padded_image, tmp_path / "image.nii.gz")
    _same(_values(radflow.extract(image_path, _written(mask, tmp_path / "mask.nii.gz"), SETTINGS)), want)
    _same(_values(radflow.extract(padded_image, mask, SETTINGS)), want)


def test_the_voxel_map_of_a_flip_and_a_permutation(phantom):
    image, mask = phantom
    permutation, shift = mask_grid.voxel_map(sitk.PermuteAxes(sitk.Flip(mask, [True, False, False]), [1, 0, 2]),
                                             image, 1e-3)
    # mask index (j, i, k) is image index (size_x - 1 - i, j, k)
    assert permutation.tolist() == [[0, -1, 0], [1, 0, 0], [0, 0, 1]]
    assert shift.tolist() == [image.GetSize()[0] - 1, 0, 0]


@pytest.mark.parametrize("change, message", [
    (lambda m: m.SetOrigin(tuple(np.add(m.GetOrigin(), 0.4 * np.asarray(m.GetDirection()).reshape(3, 3)[:, 0]))),
     "is not on the image's grid"),
    (lambda m: m.SetSpacing((2.0, 2.0, 3.0)), "is not on the image's grid"),
    (lambda m: m.SetOrigin(tuple(np.add(m.GetOrigin(), 2.0 * np.asarray(m.GetDirection()).reshape(3, 3)[:, 1]))),
     "reaches outside the image"),
], ids=["shifted-part-voxel", "other-spacing", "shifted-out"])
def test_a_mask_that_is_not_on_the_image_voxels_is_refused(phantom, tmp_path, change, message):
    image, mask = phantom
    moved = sitk.Image(mask)
    change(moved)
    image_path, mask_path = _written(image, tmp_path / "image.nii.gz"), _written(moved, tmp_path / "mask.nii.gz")
    with pytest.raises(InputError, match=message):
        radflow.extract(image_path, mask_path, SETTINGS)
    with pytest.raises(InputError, match=message):
        radflow.extract(image, moved, SETTINGS)


def test_a_mask_with_several_labels_needs_one_chosen(phantom, reference_values, tmp_path):
    image, mask = phantom
    labels = sitk.GetArrayFromImage(mask).astype(np.uint8)
    labels[(labels == 0)] = 7  # the rest of the image: a second label
    two = sitk.GetImageFromArray(labels)
    two.CopyInformation(mask)
    image_path, mask_path = _written(image, tmp_path / "image.nii.gz"), _written(two, tmp_path / "mask.nii.gz")
    with pytest.raises(InputError, match="has labels 1, 7: choose one with --roi"):
        radflow.extract(image_path, mask_path, SETTINGS)
    with pytest.raises(InputError, match="has labels 1, 7"):
        radflow.extract(image, labels, SETTINGS)
    _same(_values(radflow.extract(image_path, mask_path, SETTINGS, roi=1)), reference_values)
    everything = np.ones_like(labels)
    _same(_values(radflow.extract(image_path, mask_path, SETTINGS, roi="1,7")),
          _values(radflow.extract(image, everything, SETTINGS)))  # a union of labels, as BraTS' "1,4"


def _probability_map(mask: sitk.Image) -> sitk.Image:
    """The ROI at 0.6-0.95, a faint tail of 1e-4 to 0.45 over the rest of the image (a network's softmax, or a
    mask resampled with linear interpolation)."""
    inside = sitk.GetArrayFromImage(mask).astype(bool)
    rng = np.random.default_rng(11)
    fractions = np.where(inside, rng.uniform(0.6, 0.95, inside.shape), rng.uniform(1e-4, 0.45, inside.shape))
    out = sitk.GetImageFromArray(fractions.astype(np.float32))
    out.CopyInformation(mask)
    return out


def test_a_mask_of_fractions_is_its_voxels_of_at_least_one_half(phantom, reference_values, tmp_path):
    """A probability map (or a linearly resampled mask) is read as IBSI reads an interpolated mask, voxels >= 0.5,
    and says so; every non-zero voxel, as a label mask, would have been the whole image."""
    image, mask = phantom
    fractions = _probability_map(mask)
    announced = r"holds fractions \(0\.\d+ to 0\.9\d+: .*voxels of at least 0.5"
    with pytest.warns(FractionalMaskWarning, match=announced):
        _same(_values(radflow.extract(image, fractions, SETTINGS)), reference_values)
    image_path, mask_path = _written(image, tmp_path / "image.nii.gz"), _written(fractions, tmp_path / "p.nii.gz")
    with pytest.warns(FractionalMaskWarning):
        _same(_values(radflow.extract(image_path, mask_path, SETTINGS)), reference_values)
    result = subprocess.run([sys.executable, "-m", "radflow", "extract", image_path, mask_path, "--settings",
                             str(SETTINGS), "--out", str(tmp_path / "f.csv")], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "radflow: warning: the mask holds fractions" in result.stderr
    with open(tmp_path / "f.csv", newline="") as fh:
        _same([float(row["value"]) if row["value"] else math.nan for row in csv.DictReader(fh)], reference_values)


@pytest.mark.parametrize("scale, message", [
    (3.0, r"non-integer values up to 2\.8\d+: neither integer labels nor fractions in \[0, 1\]"),
    (0.4, r"none reaches 0.5: its largest is 0\.3[78]"),
])
def test_fractions_beyond_one_or_all_below_one_half_are_refused(phantom, scale, message):
    image, mask = phantom
    with pytest.raises(InputError, match=message):
        radflow.extract(image, _probability_map(mask) * scale, SETTINGS)


def test_labels_with_float_rounding_are_still_labels(phantom, reference_values):
    image, mask = phantom
    rounded = sitk.Cast(mask, sitk.sitkFloat64) * (1.0 + 1e-9)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FractionalMaskWarning)
        _same(_values(radflow.extract(image, rounded, SETTINGS)), reference_values)


def test_the_pipeline_thresholds_a_mask_of_fractions_with_a_qc_warning(phantom, tmp_path):
    from radflow.pipeline import ingest

    image, mask = phantom
    path = _written(_probability_map(mask), tmp_path / "p.nii.gz")
    placed, noticed = ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": path, "label": ""}, image, [])
    assert np.array_equal(sitk.GetArrayViewFromImage(placed), sitk.GetArrayViewFromImage(mask))
    assert [(w["code"], w["roi"]) for w in noticed] == [("MASK_FRACTIONAL", "GTV")]
    assert "its ROI is the voxels of at least 0.5" in noticed[0]["message"]
    beyond = _written(_probability_map(mask) * 3.0, tmp_path / "beyond.nii.gz")
    with pytest.raises(ingest.InputFileError, match="neither integer labels nor fractions") as refused:
        ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": beyond, "label": ""}, image, [])
    assert refused.value.code == "MASK_UNREADABLE"


def test_the_cli_says_what_is_wrong_with_the_mask(phantom, tmp_path):
    image, mask = phantom
    moved = sitk.Image(mask)
    moved.SetSpacing((2.0, 2.0, 3.0))
    result = subprocess.run([sys.executable, "-m", "radflow", "extract", _written(image, tmp_path / "image.nii.gz"),
                             _written(moved, tmp_path / "mask.nii.gz"), "--settings", str(SETTINGS),
                             "--out", str(tmp_path / "features.csv")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert "radflow: error: mask " in result.stderr and "is not on the image's grid" in result.stderr
    assert not (tmp_path / "features.csv").exists()


def test_the_pipeline_places_a_reoriented_mask_file_and_fails_one_off_the_grid(phantom, tmp_path):
    from radflow import qc
    from radflow.pipeline import ingest

    image, mask = phantom
    flipped = _written(sitk.Flip(mask, [False, True, False]), tmp_path / "flipped.nii.gz")
    placed, warnings = ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": flipped, "label": ""}, image, [])
    assert warnings == [] and qc.same_geometry(image, placed)
    assert np.array_equal(sitk.GetArrayViewFromImage(placed), sitk.GetArrayViewFromImage(mask))
    shifted = sitk.Image(mask)
    shifted.SetSpacing((2.0, 2.0, 3.0))
    as_read, _ = ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": _written(shifted, tmp_path / "s.nii.gz"),
                                   "label": ""}, image, [])
    assert qc.mask_geometry(image, as_read, "GTV").severity == qc.FAIL


def test_the_pipeline_refuses_a_colour_mask_file_with_a_code(phantom, tmp_path):
    from radflow.pipeline import ingest

    image, mask = phantom
    colour = sitk.Compose(mask, mask, mask)
    with pytest.raises(ingest.InputFileError, match="3 values per voxel") as refused:
        ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": _written(colour, tmp_path / "rgb.nii.gz"),
                          "label": ""}, image, [])
    assert refused.value.code == "MASK_UNREADABLE"


def test_a_label_that_is_not_in_the_mask_is_named_with_the_labels_there(phantom, tmp_path):
    image, mask = phantom
    image_path, mask_path = _written(image, tmp_path / "image.nii.gz"), _written(mask, tmp_path / "mask.nii.gz")
    with pytest.raises(InputError, match=r"has no voxel labelled 3 \(its labels: 1\)"):
        radflow.extract(image_path, mask_path, SETTINGS, roi=3)
    with pytest.raises(InputError, match="a NIfTI/NRRD mask's ROI is a label value or a comma-separated list"):
        radflow.extract(image_path, mask_path, SETTINGS, roi="GTV")


def test_the_cli_reads_a_reoriented_mask_through_its_roi_window(phantom, tmp_path):
    """``radflow extract`` reads only the ROI's window of the image (``io.read_roi_window``); a flipped and permuted
    mask is placed on the image grid before the window is cut, so the CSV is the original's, byte for byte."""
    image, mask = phantom
    image_path = _written(image, tmp_path / "image.nii.gz")
    moved = sitk.PermuteAxes(sitk.Flip(mask, [False, True, True]), [1, 0, 2])
    csvs = []
    for name, volume in (("mask", mask), ("moved", moved)):
        out = tmp_path / "not yet" / f"{name}.csv"  # --out creates its folder
        result = subprocess.run([sys.executable, "-m", "radflow", "extract", image_path,
                                 _written(volume, tmp_path / f"{name}.nii.gz"), "--settings", str(SETTINGS),
                                 "--out", str(out)], capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        csvs.append(out.read_bytes())
    assert csvs[0] == csvs[1]


def test_the_pipeline_needs_the_label_of_a_multi_label_mask_file(phantom, tmp_path):
    from radflow.pipeline import ingest

    image, mask = phantom
    labels = sitk.GetArrayFromImage(mask).astype(np.uint8)
    labels[labels == 0] = 4
    two = sitk.GetImageFromArray(labels)
    two.CopyInformation(mask)
    path = _written(two, tmp_path / "labels.nrrd")
    with pytest.raises(ingest.InputFileError, match="has labels 1, 4 and the input manifest names none") as refused:
        ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": path, "label": ""}, image, [])
    assert refused.value.code == "ROI_NOT_FOUND"
    one, _ = ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": path, "label": "1"}, image, [])
    both, _ = ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": path, "label": "1,4"}, image, [])
    assert np.array_equal(sitk.GetArrayViewFromImage(one), sitk.GetArrayViewFromImage(mask))
    assert int(sitk.GetArrayViewFromImage(both).sum()) == labels.size
    with pytest.raises(ingest.InputFileError, match="is not a number or a comma-separated list"):
        ingest.read_mask({"roi": "GTV", "kind": "FILE", "path": path, "label": "GTV"}, image, [])


def test_a_seg_drawn_in_another_frame_of_reference_is_refused(tmp_path):
    """The frame-of-reference check reads a SEG's FrameOfReferenceUID before its frames (so this minimal SEG object,
    one segment and no pixel data, gets no further), against the one a DICOM series' image carries."""
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    from radflow.dicom import seg
    from radflow.io import FRAME_OF_REFERENCE, read_mask

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"  # Segmentation Storage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.Modality = "SEG"
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.FrameOfReferenceUID = generate_uid()
    segment = pydicom.Dataset()
    segment.SegmentNumber, segment.SegmentLabel = 1, "lesion"
    ds.SegmentSequence = [segment]
    path = tmp_path / "seg.dcm"
    ds.save_as(path, enforce_file_format=True)
    assert seg.frame_of_reference(path) == ds.FrameOfReferenceUID
    image = sitk.Image(4, 4, 4, sitk.sitkFloat32)
    image.SetMetaData(FRAME_OF_REFERENCE, generate_uid())
    with pytest.raises(InputError, match="the SEG .* is drawn in another frame of reference"):
        read_mask(path, image)
