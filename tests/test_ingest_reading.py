"""Series reading beyond plain single-frame slices: enhanced multi-frame images (geometry and rescale per frame),
compressed transfer syntaxes through pydicom's pixel handlers, per-slice rescale, and the codes of refusals."""
from __future__ import annotations

import highdicom as hd
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
from pydicom.uid import JPEGLSLossless, RLELossless, generate_uid

from radflow.dicom import series
from radflow.dicom.series import SeriesError, load_series
from test_dicom_reading import SLOPE, INTERCEPT, stored_values, write_ct


@pytest.fixture
def slices(tmp_path):
    """5 oblique slices (scrambled names, reversed InstanceNumber) with a different rescale slope per slice."""
    paths = write_ct(tmp_path / "ct", stored_values())
    for k, path in enumerate(paths):
        ds = pydicom.dcmread(path)
        ds.RescaleSlope = str(0.25 * (k + 1))
        ds.save_as(path)
    return paths


def expected_volume(paths) -> np.ndarray:
    """Each slice's own slope and intercept, slices in position order (independent of the reader)."""
    datasets = sorted((pydicom.dcmread(p) for p in paths), key=lambda ds: int(ds.InstanceNumber), reverse=True)
    return np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
                     for ds in datasets]).astype(np.float32)


def test_per_slice_rescale(slices):
    volume = load_series(slices)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(volume.image), expected_volume(slices))
    assert volume.n_frames == 5 and not volume.multi_frame
    assert [w.code for w in volume.warnings] == [series.ORIENTATION_NON_AXIAL]  # the fixture is rotated 30 degrees


def test_enhanced_multi_frame_reads_like_its_single_frame_source(slices, tmp_path):
    datasets = [pydicom.dcmread(p) for p in slices]
    multi = hd.legacy.LegacyConvertedEnhancedCTImage(
        datasets, series_instance_uid=generate_uid(), series_number=3, sop_instance_uid=generate_uid(),
        instance_number=1)
    assert int(multi.NumberOfFrames) == 5
    multi.save_as(tmp_path / "enhanced")
    single, enhanced = load_series(slices), load_series([tmp_path / "enhanced"])
    assert enhanced.multi_frame and enhanced.n_frames == 5
    np.testing.assert_array_equal(sitk.GetArrayFromImage(enhanced.image), expected_volume(slices))
    for attribute in ("GetOrigin", "GetSpacing", "GetDirection"):
        np.testing.assert_allclose(getattr(enhanced.image, attribute)(), getattr(single.image, attribute)(),
                                   atol=1e-6)


def test_multi_frame_without_plane_positions_is_refused_with_tags_missing(slices, tmp_path):
    datasets = [pydicom.dcmread(p) for p in slices]
    multi = hd.legacy.LegacyConvertedEnhancedCTImage(
        datasets, series_instance_uid=generate_uid(), series_number=3, sop_instance_uid=generate_uid(),
        instance_number=1)
    for frame in multi.PerFrameFunctionalGroupsSequence:
        del frame.PlanePositionSequence
    multi.save_as(tmp_path / "enhanced")
    with pytest.raises(SeriesError, match="without ImagePositionPatient") as info:
        load_series([tmp_path / "enhanced"])
    assert info.value.code == series.TAGS_MISSING


@pytest.mark.parametrize("syntax", [JPEGLSLossless, RLELossless])
def test_lossless_compressed_series_are_exact(slices, tmp_path, syntax):
    """(openjpeg cannot encode 6 x 7 images; JPEG 2000 is covered by the corpus run on 64 x 64 slices.)"""
    folder = tmp_path / syntax.name.split()[0]
    folder.mkdir()
    paths = []
    for n, path in enumerate(slices):
        ds = pydicom.dcmread(path)
        ds.compress(syntax)
        ds.save_as(folder / f"f{n}")
        paths.append(folder / f"f{n}")
    assert pydicom.dcmread(paths[0]).file_meta.TransferSyntaxUID == syntax
    np.testing.assert_array_equal(sitk.GetArrayFromImage(load_series(paths).image), expected_volume(slices))


def test_refusals_carry_codes(slices, tmp_path):
    truncated = tmp_path / "truncated"
    truncated.write_bytes(slices[0].read_bytes()[:-20])
    with pytest.raises(SeriesError, match="truncated") as info:
        load_series([truncated, *slices[1:]])
    assert info.value.code == series.FILE_TRUNCATED
    not_dicom = tmp_path / "junk"
    not_dicom.write_bytes(b"\x01" * 300)
    with pytest.raises(SeriesError, match="file 2 of 2") as info:
        load_series([slices[0], not_dicom])
    assert info.value.code == series.FILE_UNREADABLE and str(not_dicom.name) not in str(info.value)
    copy = tmp_path / "copy"
    copy.write_bytes(slices[2].read_bytes())
    volume = load_series([*slices, copy])  # the same instance twice is read once
    assert volume.n_frames == 5 and series.DUPLICATE_INSTANCE in [w.code for w in volume.warnings]


def test_default_rescale_when_tags_are_absent(slices):
    for path in slices:
        ds = pydicom.dcmread(path)
        del ds.RescaleSlope, ds.RescaleIntercept
        ds.save_as(path)
    stored = sorted((pydicom.dcmread(p) for p in slices), key=lambda ds: int(ds.InstanceNumber), reverse=True)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(load_series(slices).image),
                                  np.stack([ds.pixel_array for ds in stored]).astype(np.float32))
    assert (SLOPE, INTERCEPT) == (0.5, -1024.0)  # the fixture's defaults were really overridden above
