"""Image and mask perturbations (Zwanenburg et al. 2019) and the `perturb` pipeline stage on real NIfTI volumes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import SimpleITK as sitk
from scipy import ndimage

from conftest import REPO
from radflow import store
from radflow.manifest import Manifest, MaskEntry, ScanEntry
from radflow.pipeline.perturb import perturb_batch
from radflow.stability import perturbation as P

SPACING = (2.0, 0.8, 0.8)
SHAPE = (24, 72, 72)


def ellipsoid(shape=SHAPE, spacing=SPACING, centre=(12, 36, 34), radii_mm=(10.0, 12.0, 8.0)) -> np.ndarray:
    z, y, x = np.indices(shape)
    return sum(((axis - c) * s / r) ** 2 for axis, c, s, r in zip((z, y, x), centre, spacing, radii_mm)) < 1


def lesion_image(rng, noise_sd=12.0) -> tuple[np.ndarray, np.ndarray]:
    """A textured 40 HU lesion in -800 HU lung, white noise of ``noise_sd`` HU."""
    mask = ellipsoid()
    texture = ndimage.gaussian_filter(rng.standard_normal(SHAPE), 2.0)
    image = np.where(mask, 40.0 + 300.0 * texture, -800.0) + noise_sd * rng.standard_normal(SHAPE)
    return image, mask


def test_noise_estimate_recovers_white_noise_and_ignores_clipped_air():
    rng = np.random.default_rng(1)
    image, _ = lesion_image(rng, noise_sd=12.0)
    image[:, :20, :] = -1024.0  # clipped air outside the body: no noise there
    assert P.estimate_noise_sd(image) == pytest.approx(12.0, rel=0.05)
    assert P.estimate_noise_sd(np.full((3, 8, 8), 5.0)) == 0.0


def test_translation_is_linear_interpolation_and_rotation_keeps_the_centroid():
    rng = np.random.default_rng(2)
    image, mask = lesion_image(rng)
    moved, moved_mask = P.rotate_translate(image, mask, SPACING, 0.0, (0.0, 0.0, 0.25))
    # Output voxel x takes the input at x - 0.25 voxel; the mask's partial-volume fractions round back to itself.
    expected = 0.75 * image[:, :, 1:] + 0.25 * image[:, :, :-1]
    assert np.allclose(moved[:, :, 1:], expected, atol=1e-9)
    assert np.array_equal(moved_mask, mask)
    _, moved_mask = P.rotate_translate(image, mask, SPACING, 0.0, (0.0, 0.0, 0.75))
    assert np.array_equal(moved_mask[:, :, 1:], mask[:, :, :-1])  # 0.75 voxel rounds to one voxel

    rotated, rotated_mask = P.rotate_translate(image, mask, SPACING, 90.0, (0.0, 0.0, 0.0))
    assert P.centroid_mm(rotated_mask, SPACING) == pytest.approx(P.centroid_mm(mask, SPACING), abs=0.05)
    assert rotated_mask.sum() == pytest.approx(mask.sum(), rel=0.03)
    # A quarter turn swaps the in-plane extents of the mask (12 mm along y, 8 mm along x before).
    extent = [np.ptp(i) * s for i, s in zip(np.nonzero(rotated_mask), SPACING)]
    assert extent[1] < extent[2]
    same, same_mask = P.rotate_translate(image, mask, SPACING, 0.0, (0.0, 0.0, 0.0))
    assert np.array_equal(same, image) and np.array_equal(same_mask, mask)


@pytest.mark.parametrize("fraction", [-0.2, -0.07, 0.05, 0.2])
def test_volume_adaptation_hits_the_target_volume_and_nests(fraction):
    mask = ellipsoid()
    adapted = P.adapt_volume(mask, SPACING, fraction)
    assert adapted.sum() == round((1 + fraction) * mask.sum())
    inner, outer = (adapted, mask) if fraction < 0 else (mask, adapted)
    assert np.array_equal(inner & outer, inner)
    assert np.array_equal(P.adapt_volume(mask, SPACING, 0.0), mask)


def test_contour_randomisation_varies_the_contour_around_the_lesion_edge_and_is_seeded():
    image, mask = lesion_image(np.random.default_rng(3))

    def dice(a, b):
        return 2 * (a & b).sum() / (a.sum() + b.sum())

    variants = [P.randomise_contour(image, mask, SPACING, np.random.default_rng(s)) for s in range(6)]
    assert np.array_equal(variants[0], P.randomise_contour(image, mask, SPACING, np.random.default_rng(0)))
    assert len({v.tobytes() for v in variants}) > 1
    assert 0.8 < min(dice(v, mask) for v in variants) and max(dice(v, mask) for v in variants) < 1
    assert np.mean([v.sum() / mask.sum() for v in variants]) == pytest.approx(1.0, abs=0.15)
    # Nothing is added far from the ROI: supervoxels overlapping the mask by less than 20 % never join.
    far = ~ndimage.binary_dilation(mask, iterations=6)
    assert not any((v & far).any() for v in variants)


def test_perturbation_chain_is_deterministic_for_a_seed():
    settings = P.PerturbationSettings(n_perturbations=3)
    image, mask = lesion_image(np.random.default_rng(4))

    def run(seed):
        rng = np.random.default_rng(seed)
        draw = P.draw(rng, settings, "p000")
        return draw, *P.perturb(image, mask, SPACING, draw, rng)

    d1, i1, m1 = run(11)
    d2, i2, m2 = run(11)
    d3, i3, _ = run(12)
    assert d1 == d2 and np.array_equal(i1, i2) and np.array_equal(m1, m2)
    assert d1 != d3 and not np.array_equal(i1, i3)
    assert abs(d1.rotation_deg) <= 15 and all(0 <= t < 1 for t in d1.translation_vox)
    assert abs(d1.volume_change) <= 0.2
    # Disabling noise changes nothing else in the draw (the same random numbers are consumed).
    quiet = P.draw(np.random.default_rng(11), P.PerturbationSettings(noise=False), "p000")
    assert quiet.rotation_deg == d1.rotation_deg and not quiet.noise


def test_roi_window_contains_the_roi_under_any_rotation():
    mask = np.zeros((10, 120, 120), dtype=bool)
    mask[4:6, 58:62, 20:100] = True  # a long thin ROI: its in-plane radius exceeds the box half-height
    window = P.roi_window(mask, (2.0, 1.0, 1.0), margin_mm=5.0)
    assert window[1].stop - window[1].start >= 80 and window[2].stop - window[2].start >= 80
    assert window[0] == slice(1, 9)


def test_settings_reject_unknown_keys_and_too_few_perturbations():
    with pytest.raises(ValueError, match="unknown perturbation settings"):
        P.PerturbationSettings.from_dict({"rotation": 10})
    with pytest.raises(ValueError, match="at least 2"):
        P.PerturbationSettings.from_dict({"n_perturbations": 1})
    assert P.PerturbationSettings.from_dict({"icc_form": "ICC(1,1)", "rotation_deg": 5}).rotation_deg == 5


# ------------------------------------------------------------------------------------------ the pipeline stage

def write_batch(folder, n_cases=2) -> tuple:
    """An ingest manifest with NIfTI volumes (test scans of ``n_cases`` cases, one retest that must be skipped)."""
    volumes = folder / "volumes"
    volumes.mkdir(parents=True)
    scans = []
    for index in range(n_cases):
        image, mask = lesion_image(np.random.default_rng(100 + index))
        for scan in ("test", "retest") if index == 0 else ("test",):
            stem = f"case-{index}_{scan}"
            itk_image = sitk.GetImageFromArray(image.astype(np.float32))
            itk_image.SetSpacing(SPACING[::-1])
            itk_image.SetOrigin((-30.0, 12.5, -100.0))
            itk_mask = sitk.GetImageFromArray(mask.astype(np.uint8))
            itk_mask.CopyInformation(itk_image)
            sitk.WriteImage(itk_image, str(volumes / f"{stem}_image.nii.gz"))
            sitk.WriteImage(itk_mask, str(volumes / f"{stem}_GTV_mask.nii.gz"))
            scans.append(ScanEntry(case_id=f"case-{index}", scan=scan, image=f"volumes/{stem}_image.nii.gz",
                                   masks=[MaskEntry("GTV", "SEG", "GTV", f"volumes/{stem}_GTV_mask.nii.gz")]))
    Manifest("b0000", scans).write(folder / "ingest.json")
    store.empty_frame("qc").to_parquet(folder / "qc.parquet", index=False)
    return folder / "ingest.json", folder / "qc.parquet"


@pytest.fixture(scope="module")
def small_settings(tmp_path_factory):
    path = tmp_path_factory.mktemp("settings") / "small.yaml"
    path.write_text((REPO / "config/settings/ct_iso1mm_fbs25.yaml").read_text()
                    + "families: [morphology, statistics, glcm]\n")
    return path


def test_perturb_stage_on_nifti_volumes_is_deterministic(tmp_path, small_settings):
    manifest, qc = write_batch(tmp_path)
    settings = P.PerturbationSettings(n_perturbations=3)
    first = perturb_batch(manifest, qc, [small_settings], settings, seed=5)
    again = perturb_batch(manifest, qc, [small_settings], settings, seed=5)
    other = perturb_batch(manifest, qc, [small_settings], settings, seed=6)
    pd.testing.assert_frame_equal(first, again)
    assert set(first["scan"]) == {"test"} and set(first["case_id"]) == {"case-0", "case-1"}
    assert sorted(first["perturbation"].unique()) == ["p000", "p001", "p002"]
    per_copy = first.groupby(["case_id", "perturbation"]).size()
    assert per_copy.nunique() == 1 and per_copy.iloc[0] > 50
    volume = first[first["ibsi_code"] == "RNU0"].set_index(["case_id", "perturbation"])["value"]
    assert volume.groupby("case_id").std().min() > 0  # the copies differ
    merged = first.merge(other, on=["case_id", "perturbation", "ibsi_code", "aggregation"])
    assert not np.allclose(merged["value_x"], merged["value_y"], equal_nan=True)
    # The case's batch neighbours do not matter: case-1 alone gives the same rows.
    alone_dir = tmp_path / "alone"
    alone_manifest, alone_qc = write_batch(alone_dir, n_cases=2)
    doc = Manifest.read(alone_manifest)
    Manifest("b0001", [s for s in doc.scans if s.case_id == "case-1"]).write(alone_manifest)
    alone = perturb_batch(alone_manifest, alone_qc, [small_settings], settings, seed=5)
    pd.testing.assert_frame_equal(alone.reset_index(drop=True),
                                  first[first["case_id"] == "case-1"].reset_index(drop=True))
