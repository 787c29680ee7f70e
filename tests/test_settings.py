import re

import pytest

from radflow.settings import Settings, SettingsError


def test_same_settings_same_id_whatever_the_spelling():
    explicit = Settings.from_dict({"discretisation": {"texture": {"method": "fixed_bin_size", "bin_width": 25.0}}})
    implicit = Settings.from_dict({})
    assert explicit.settings_id == implicit.settings_id
    assert len(implicit.settings_id) == 12


def test_any_change_changes_the_id():
    base = Settings.from_dict({})
    changed = Settings.from_dict({"discretisation": {"texture": {"bin_width": 10}}})
    assert base.settings_id != changed.settings_id


@pytest.mark.parametrize(
    "given, message",
    [
        ({"discretisation": {"texture": {"bin_widht": 25}}}, "unknown settings key"),
        ({"discretisation": {"texture": {"method": "fixed_bin_number"}}}, "n_bins"),
        ({"interpolation": {"image_interpolator": "sinc"}}, "image_interpolator"),
        ({"families": ["glcm", "wavelet"]}, "unknown feature families"),
        ({"resegmentation": {"range": [400, -500]}}, "low < high"),
        ({"texture": {"zone_aggregations": ["4D"]}}, "unknown aggregations"),
    ],
)
def test_invalid_settings_are_rejected_with_a_clear_message(given, message):
    with pytest.raises(SettingsError, match=message):
        Settings.from_dict(given)


# ------------------------------------------------------------------ complete validation when settings are loaded

@pytest.mark.parametrize(
    "given, message",
    [
        ({"discretisation": {"texture": {"bin_width": "25"}}}, r"bin_width must be a number > 0, got '25'"),
        ({"discretisation": {"texture": {"bin_width": 0}}}, r"bin_width must be a number > 0, got 0"),
        ({"discretisation": {"texture": {"method": "fixed_bin_number", "n_bins": 2.5}}},
         r"n_bins must be an integer >= 1, got 2.5"),
        ({"discretisation": {"texture": {"method": "fixed_bin_number", "n_bins": True}}},
         r"n_bins must be an integer >= 1, got True"),
        ({"discretisation": {"texture": {"method": "fixed_bin_number", "n_bins": 100000}}},
         r"n_bins 100000 exceeds the maximum of 65536 grey levels \(a full co-occurrence matrix alone would take "
         r"80 GB\)"),
        ({"resegmentation": {"range": [-1000, 400]}, "discretisation": {"texture": {"bin_width": 1e-6}}},
         r"bin_width 1e-06 over the intensity range \[-1000, 400\] gives 1400000001 grey levels"),
        ({"interpolation": {"enabled": True, "spacing_mm": [0, 1, 1]}},
         r"spacing_mm must be \[x, y, z\] in mm, each > 0"),
        ({"interpolation": {"enabled": True, "spacing_mm": [-1, 1, 1]}}, r"spacing_mm .* got \[-1, 1, 1\]"),
        ({"interpolation": {"enabled": True, "spacing_mm": [1, 1]}}, r"spacing_mm .* got \[1, 1\]"),
        ({"interpolation": {"enabled": True, "spacing_mm": 1.0}}, r"spacing_mm .* got 1.0"),
        ({"interpolation": {"enabled": True, "spacing_mm": [1, 1, None]}}, r"spacing_mm .* got \[1, 1, None\]"),
        ({"interpolation": {"enabled": True, "spacing_mm": [0.01, 0.01, 0.01]}},
         r"spacing_mm \[0.01, 0.01, 0.01\] is too fine: the 1 cm3 local-intensity sphere alone would be 1e\+09 "
         r"voxels \(64 GB\)"),
        ({"interpolation": {"partial_volume_threshold": 5}}, r"partial_volume_threshold must be a number in \(0, 1\]"),
        ({"interpolation": {"partial_volume_threshold": 0}}, r"partial_volume_threshold must be a number in \(0, 1\]"),
        ({"interpolation": {"enabled": "false"}}, r"interpolation.enabled must be true or false, got 'false'"),
        ({"interpolation": {"round_intensities": "no"}}, r"round_intensities must be true or false"),
        ({"texture": {"glcm_symmetric": "yes"}}, r"glcm_symmetric must be true or false"),
        ({"modality": "XYZ"}, r"modality must be one of \['CT', 'PET', 'MR', 'generic'\], got 'XYZ'"),
        ({"intensity_normalisation": "zscore"}, r"intensity_normalisation must be one of"),
        ({"families": []}, r"families must be a non-empty list"),
        ({"local_intensity": {"sphere_volume_cm3": 0}}, r"sphere_volume_cm3 must be a number > 0, got 0"),
        ({"texture": {"glcm_distance": 0}}, r"glcm_distance must be an integer >= 1, got 0"),
        ({"texture": {"ngldm_distance": 1.5}}, r"ngldm_distance must be an integer >= 1, got 1.5"),
        ({"texture": {"ngldm_coarseness": -1}}, r"ngldm_coarseness must be an integer >= 0"),
        ({"texture": {"zone_linkage": 0}}, r"zone_linkage must be an integer >= 1"),
        ({"resegmentation": {"outlier_sigma": -3}}, r"outlier_sigma must be a number > 0 or null"),
        ({"resegmentation": {"range": ["a", 400]}}, r"resegmentation.range must be \[low, high\]"),
        ({"morphology": {"seed": 1.5}}, r"morphology.seed must be an integer >= 0"),
        ({"discretisation": {"ivh": {"method": "fixed_bin_size", "bin_width": float("nan")}}},
         r"ivh.bin_width must be a number > 0, got nan"),
    ],
)
def test_every_bad_value_is_refused_at_load_with_a_one_line_message(given, message):
    with pytest.raises(SettingsError, match=message) as caught:
        Settings.from_dict(given)
    assert "\n" not in str(caught.value)


def test_the_edges_of_the_ranges_are_accepted():
    Settings.from_dict({"interpolation": {"enabled": True, "partial_volume_threshold": 1.0,
                                          "spacing_mm": [0.5, 0.5, 0.5]}})
    Settings.from_dict({"interpolation": {"enabled": True, "dimensions": "2D", "spacing_mm": [1, 1, None]}})
    Settings.from_dict({"discretisation": {"texture": {"method": "fixed_bin_number", "n_bins": 65536}}})
    Settings.from_dict({"modality": "MR", "intensity_normalisation": "z_score", "families": ["statistics"]})


def test_every_shipped_settings_file_is_valid():
    from conftest import REPO
    from radflow.settings import validate_settings_file

    files = [p for folder in ("settings", "ibsi", "ibsi2") for p in (REPO / "config" / folder).glob("*.yaml")]
    assert len(files) > 20
    for path in files:
        validate_settings_file(path)


def test_a_settings_file_error_names_the_file_in_one_line(tmp_path):
    from radflow.settings import validate_settings_file

    path = tmp_path / "mine.yaml"
    path.write_text("name: mine\ndiscretisation:\n  texture: {bin_width: '25'}\n")
    with pytest.raises(SettingsError, match="^" + re.escape(f"{path}: discretisation.texture.bin_width must be a "
                                                            "number > 0, got '25'") + "$"):
        validate_settings_file(path)
    path.write_text("interpolation: [unbalanced\n")
    with pytest.raises(SettingsError, match=r"mine.yaml: not valid YAML") as caught:
        validate_settings_file(path)
    assert "\n" not in str(caught.value)
    with pytest.raises(SettingsError, match=r"cannot be read"):
        validate_settings_file(tmp_path / "absent.yaml")


def test_fixed_bin_size_refuses_a_level_count_that_cannot_fit_before_allocating():
    import numpy as np

    from radflow.imaging.discretisation import DiscretisationError, fixed_bin_size

    image = np.array([0.0, 1000.0, 400.0])
    with pytest.raises(DiscretisationError, match=r"gives 1000000001 grey levels, more than the maximum of 65536"):
        fixed_bin_size(image, np.ones(3, dtype=bool), 1e-6)
    levels, n_levels = fixed_bin_size(image, np.ones(3, dtype=bool), 25.0)
    assert n_levels == 41 and levels.tolist() == [1, 41, 17]
