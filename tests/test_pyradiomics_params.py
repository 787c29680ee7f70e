"""PyRadiomics parameter files (written from PyRadiomics' documented examples, examples/exampleSettings/exampleCT.yaml
and exampleMR_3mm.yaml) translated into radflow settings: the same settings (and so the same features) as the
equivalent hand-written radflow documents, and a warning for every PyRadiomics behaviour radflow does not copy."""
from __future__ import annotations

import subprocess
import sys
import warnings

import pandas as pd
import pytest
import SimpleITK as sitk
import yaml

import radflow
from ibsi_reference import IBSI
from radflow.pyradiomics_params import translate
from radflow.settings import PyRadiomicsTranslationWarning, Settings, SettingsError

PHANTOM = IBSI / "digital_phantom"

EXAMPLE_CT = """
imageType:
  Original: {}
  LoG:
    sigma: [1.0, 2.0, 3.0, 4.0, 5.0]  # If you include sigma values >5, remember to also increase the padDistance.
  Wavelet: {}
featureClass:
  shape: ['Volume', 'SurfaceArea', 'SurfaceVolumeRatio', 'Sphericity', 'SphericalDisproportion',
          'Maximum3DDiameter', 'Maximum2DDiameterSlice', 'Maximum2DDiameterColumn', 'Maximum2DDiameterRow',
          'MajorAxis', 'MinorAxis', 'LeastAxis', 'Elongation', 'Flatness']
  firstorder:
  glcm:
  glrlm:
  glszm:
setting:
  interpolator: 'sitkBSpline'
  resampledPixelSpacing: [1, 1, 1]
  padDistance: 10
  binWidth: 25
  voxelArrayShift: 1000
  label: 1
"""

# The same extraction written by hand in radflow's IBSI terms (original image).
HAND_CT = """
interpolation: {enabled: true, dimensions: 3D, spacing_mm: [1, 1, 1], image_interpolator: cubic,
                mask_interpolator: nearest, round_intensities: false}
discretisation: {texture: {method: fixed_bin_size, bin_width: 25}}
texture: {matrix_aggregations: ["3D, averaged"], zone_aggregations: ["3D"]}
families: [morphology, statistics, intensity_histogram, glcm, glrlm, glszm]
"""

EXAMPLE_MR_3MM = """
imageType:
  Original: {}
  LoG:
    sigma: [2.0, 3.0, 4.0, 5.0]
  Wavelet: {}
featureClass:
  shape:
  firstorder:
  glcm:
    - 'Autocorrelation'
    - 'JointAverage'
    - 'ClusterProminence'
  glrlm:
  glszm:
  gldm:
setting:
  normalize: true
  normalizeScale: 100
  interpolator: 'sitkBSpline'
  resampledPixelSpacing: [2, 2, 2]
  binWidth: 5
  voxelArrayShift: 300
  label: 1
"""

HAND_MR_LOG2 = """
modality: MR
intensity_normalisation: z_score
interpolation: {enabled: true, spacing_mm: [2, 2, 2], image_interpolator: cubic, mask_interpolator: nearest,
                round_intensities: false}
discretisation: {texture: {method: fixed_bin_size, bin_width: 0.05}}
texture: {matrix_aggregations: ["3D, averaged"], zone_aggregations: ["3D"]}
families: [morphology, statistics, intensity_histogram, glcm, glrlm, glszm, ngldm]
filter: {type: laplacian_of_gaussian, sigma_mm: 2.0}
"""


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def _phantom():
    if not PHANTOM.exists():
        pytest.skip("../shared/ibsi is absent")
    return sitk.ReadImage(str(PHANTOM / "image.nii.gz")), sitk.ReadImage(str(PHANTOM / "mask.nii.gz"))


def test_example_ct_gives_one_document_per_image_type():
    labels = [t.image_type for t in translate(yaml.safe_load(EXAMPLE_CT))]
    assert labels == ["original", *(f"log-sigma-{s}mm" for s in range(1, 6)),
                      *(f"wavelet-{b}" for b in ("LLH", "LHL", "LHH", "HLL", "HLH", "HHL", "HHH", "LLL"))]


def test_example_ct_original_equals_the_hand_written_document_and_its_features(tmp_path):
    params = _write(tmp_path, "exampleCT.yaml", EXAMPLE_CT)
    with pytest.warns(PyRadiomicsTranslationWarning):
        translated = Settings.from_pyradiomics(params, "original")
    hand = Settings.from_yaml(_write(tmp_path, "hand.yaml", HAND_CT))
    assert translated.doc == hand.doc and translated.settings_id == hand.settings_id
    image, mask = _phantom()
    with pytest.warns(PyRadiomicsTranslationWarning):
        via_params = radflow.extract(image, mask, params)  # --settings exampleCT.yaml: detected, original image
    pd.testing.assert_frame_equal(via_params, radflow.extract(image, mask, hand))


def test_example_mr_log_equals_the_hand_written_document_and_its_features(tmp_path):
    params = _write(tmp_path, "exampleMR_3mm.yaml", EXAMPLE_MR_3MM)
    with pytest.warns(PyRadiomicsTranslationWarning):
        translated = Settings.from_pyradiomics(params, "log-sigma-2mm")
    hand = Settings.from_yaml(_write(tmp_path, "hand.yaml", HAND_MR_LOG2))
    assert translated.doc == hand.doc
    image, mask = _phantom()
    pd.testing.assert_frame_equal(radflow.extract(image, mask, translated), radflow.extract(image, mask, hand))


def test_cli_detects_a_pyradiomics_file_and_warns(tmp_path):
    image, _ = _phantom()
    params = _write(tmp_path, "exampleCT.yaml", EXAMPLE_CT)
    hand = _write(tmp_path, "hand.yaml", HAND_CT)
    outputs = {}
    for name, settings in (("params", params), ("hand", hand)):
        out = tmp_path / f"{name}.csv"
        result = subprocess.run([sys.executable, "-m", "radflow", "extract", str(PHANTOM / "image.nii.gz"),
                                 str(PHANTOM / "mask.nii.gz"), "--settings", str(settings), "--out", str(out)],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        outputs[name] = (out.read_text(), result.stderr)
    assert outputs["params"][0] == outputs["hand"][0]
    assert "radflow: warning: exampleCT.yaml: PyRadiomics adds voxelArrayShift (1000)" in outputs["params"][1]
    assert "import-pyradiomics" in outputs["params"][1]  # the other 13 images are named, with the way to get them
    # the hand-written document draws no translation warning; CT settings on the phantom (values 1 to 9) do draw
    # the one about an image without air
    assert [line for line in outputs["hand"][1].splitlines() if "warning" in line and "holds no air" not in line] == []


def test_import_pyradiomics_writes_valid_documents_with_the_warnings(tmp_path):
    params = _write(tmp_path, "exampleMR_3mm.yaml", EXAMPLE_MR_3MM)
    result = subprocess.run([sys.executable, "-m", "radflow", "settings", "import-pyradiomics", str(params),
                             "-o", str(tmp_path / "out" / "mr.yaml")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    written = result.stdout.split()
    assert len(written) == 1 + 4 + 8
    documents = [Settings.from_yaml(path) for path in written]
    assert len({d.settings_id for d in documents}) == len(documents)
    log2 = next(d for d in documents if d.name == "mr-log-sigma-2mm")
    hand = Settings.from_dict(yaml.safe_load(HAND_MR_LOG2))
    assert log2.settings_id == hand.settings_id
    assert "normalizeScale (100) is not copied" in result.stderr
    assert "# not copied from PyRadiomics: PyRadiomics adds voxelArrayShift (300)" in open(written[0]).read()


def test_a_single_image_file_is_written_where_asked(tmp_path):
    params = _write(tmp_path, "p.yaml", "setting: {binCount: 32}\n")
    out = tmp_path / "s.yaml"
    result = subprocess.run([sys.executable, "-m", "radflow", "settings", "import-pyradiomics", str(params),
                             "-o", str(out)], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [str(out)]
    doc = Settings.from_yaml(out).doc["discretisation"]["texture"]
    assert doc["method"] == "fixed_bin_number" and doc["n_bins"] == 32


def _warnings_of(setting: dict, **top) -> list[str]:
    return translate({"setting": setting, **top})[0].warnings


@pytest.mark.parametrize("setting, top, expected", [
    ({"voxelArrayShift": 1000}, {}, "voxelArrayShift (1000) to intensities before energy"),
    ({"binWidth": 10}, {}, "bin edges at multiples of binWidth (10)"),
    ({"resampledPixelSpacing": [1, 1, 1]}, {}, "corner of the ROI's padded bounding box"),
    ({"normalize": True, "normalizeScale": 100}, {}, "normalizeScale (100) is not copied"),
    ({"normalize": True, "removeOutliers": 3}, {}, "removeOutliers (3) is not copied"),
    ({"padDistance": 10}, {}, "padDistance (10) is ignored"),
    ({"label": 2}, {}, "pass --roi 2"),
    ({"force2D": True, "force2Ddimension": 1}, {}, "force2Ddimension (1) is not copied"),
    ({"distances": [1, 2]}, {}, "merges texture matrices over distances [1, 2]"),
    ({"resegmentRange": [-100, 200], "resegmentMode": "relative"}, {}, "resegmentMode relative is not copied"),
    ({"minimumROISize": 50}, {}, "minimumROISize (50) is ignored"),
    ({"someFutureOption": 1}, {}, "'someFutureOption' (1) has no radflow counterpart"),
    ({}, {"imageType": {"LoG": {"sigma": [1.0]}}}, "recursive Laplacian of Gaussian"),
    ({}, {"imageType": {"Wavelet": {}}}, "stationary wavelet transform"),
    ({}, {"imageType": {"Original": {}, "Square": {}}}, "image type Square has no IBSI counterpart"),
    ({}, {"featureClass": {"glcm": ["Contrast"]}}, "featureClass glcm lists individual features"),
    ({}, {"featureClass": {"firstorder": None}}, "kurtosis + 3"),
    ({}, {"featureClass": {"shape2D": None, "shape": None}}, "shape2D is not copied"),
])
def test_each_option_radflow_does_not_copy_warns(setting, top, expected):
    messages = _warnings_of(setting, **top)
    assert any(expected in m for m in messages), messages


def test_options_radflow_copies_do_not_warn():
    messages = _warnings_of({"binCount": 16, "interpolator": "sitkLinear", "resegmentRange": [-1000, 400],
                             "force2D": True, "symmetricalGLCM": True, "gldm_a": 0, "additionalInfo": True},
                            featureClass={"glcm": None, "glszm": None})
    assert messages == []


def test_translations_of_copied_options():
    doc = translate({"setting": {"binCount": 16, "interpolator": "sitkLinear", "resampledPixelSpacing": [1, 1, 0],
                                 "resegmentRange": [-1000, 400], "force2D": True, "distances": [2], "gldm_a": 1},
                     "featureClass": {"gldm": None}})[0].doc
    assert doc["discretisation"]["texture"] == {"method": "fixed_bin_number", "n_bins": 16, "bin_width": None}
    assert doc["interpolation"]["dimensions"] == "2D" and doc["interpolation"]["image_interpolator"] == "linear"
    assert doc["resegmentation"] == {"range": [-1000, 400]}
    assert doc["texture"]["matrix_aggregations"] == ["2.5D, direction-merged"]
    assert doc["texture"]["zone_aggregations"] == ["2.5D"]
    assert doc["texture"]["glcm_distance"] == doc["texture"]["ngldm_distance"] == 2
    assert doc["texture"]["ngldm_coarseness"] == 1
    assert doc["families"] == ["ngldm"]
    sigma = translate({"setting": {"resegmentRange": [-3, 3], "resegmentMode": "sigma"}})[0].doc
    assert sigma["resegmentation"] == {"outlier_sigma": 3}
    Settings.from_dict(doc)


def test_bad_pyradiomics_values_are_settings_errors(tmp_path):
    with pytest.raises(SettingsError, match="interpolator 'sitkGaussian'"):
        Settings.from_pyradiomics(_write(tmp_path, "a.yaml", "setting: {interpolator: sitkGaussian}\n"))
    with pytest.raises(SettingsError, match="unknown PyRadiomics featureClass 'glcmm'"):
        Settings.from_pyradiomics(_write(tmp_path, "b.yaml", "featureClass: {glcmm: null}\n"))
    with pytest.raises(SettingsError, match="no image type 'wavelet-LLH'"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Settings.from_pyradiomics(_write(tmp_path, "c.yaml", "imageType: {Original: {}}\n"), "wavelet-LLH")


def test_without_feature_class_the_pyradiomics_families_are_computed():
    doc = translate({"setting": {"binWidth": 25}})[0].doc
    assert doc["families"] == ["morphology", "statistics", "intensity_histogram", "glcm", "glrlm", "glszm", "ngldm",
                               "ngtdm"]
