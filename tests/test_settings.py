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
