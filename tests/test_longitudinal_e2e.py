"""End to end: a real `snakemake` run on a small multimodal (CT, PET, MR), two-timepoint demo cohort.

One patient's follow-up PET has lost its PatientWeight: that scan fails QC with PET_TAGS_MISSING and its reason,
and everything else goes on. Checked against the DuckDB database:

* every modality gets features with its own settings document (and only its own);
* PET voxels are SUVbw: the ingested volume equals stored value x RescaleSlope x weight / decayed dose computed
  here from the DICOM tags (the factor stays in the interim manifest; ``scans.intensity_unit`` says SUVbw);
* delta features equal the differences of the stored feature values, for every modality;
* the SDC beside them equals 1.96 x the SD of the test-retest differences (= 1.96 sqrt2 SEM, SEM from ICC(2,1)'s
  residual mean square with two measurements);
* a delta model (relative change -> planted response) runs through the nested CV;
* no result file carries the demo's names, identifiers or UIDs (PET/MR/follow-up ones included).
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import numpy as np
import pydicom
import pytest
import SimpleITK as sitk
import yaml

from conftest import REPO
from radflow.demo import phi_values, write_checksums
from radflow.demo_longitudinal import write_cohort
from radflow.dicom.deid import DEMO_KEY
from radflow.pipeline.discover import case_id_of

pytestmark = pytest.mark.slow
N_PATIENTS = 10  # demo seed 7: 5 responders, 5 not (2 outer x 2 inner folds need >= 4 per class)
SEED = 7
BROKEN_PATIENT = 3

SETTINGS = {"CT": "config/settings/ct_iso1mm_fbs25.yaml", "PT": "config/settings/pet_suv.yaml",
            "MR": "config/settings/mr_zscore_fbn32.yaml"}
CONFIG = {
    "demo_patients": N_PATIENTS, "demo_seed": SEED, "demo_modalities": ["CT", "PT", "MR"], "demo_timepoints": 2,
    "batch_size": 5,
    "features": list(SETTINGS.values()),
    "model": {"outcome": "response", "survival_time": None, "features_from": "delta_relative", "delta_timepoint": 1,
              "use_stable_features": False, "centre": None, "covariates": [],
              "binary_models": ["logistic_l2/radiomics"], "outer_folds": 2, "outer_repeats": 1, "inner_folds": 2,
              "n_bootstrap": 20, "n_permutations": 0, "redundancy": {"method": "correlation", "threshold": 0.9},
              "selection": {"method": "univariate", "n_features": 5}},
}


def pet_files(demo: Path, patient_id: str, timepoint: int) -> list[Path]:
    return sorted((demo / "dicom" / patient_id).glob(f"*_PT{timepoint}/images/*.dcm"))


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("longitudinal")
    demo = write_cohort(workdir / "resources" / "demo", n_patients=N_PATIENTS, seed=SEED, modalities=("CT", "PT", "MR"),
                        timepoints=2)
    broken = pet_files(demo, _patient_ids(demo)[BROKEN_PATIENT], 1)
    for path in broken:  # a follow-up PET without PatientWeight
        ds = pydicom.dcmread(path)
        del ds.PatientWeight
        ds.save_as(path)
    write_checksums(demo)  # the deliberate damage is part of this test's demo data (the demo key stays usable)
    (workdir / "config.yaml").write_text(yaml.safe_dump(CONFIG))
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env.pop("RADFLOW_PSEUDONYM_KEY", None)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--directory", str(workdir), "-c", "2",
           "--configfile", str(workdir / "config.yaml")]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1500)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return workdir


def _patient_ids(demo: Path) -> list[str]:
    lines = (demo / "clinical.csv").read_text().splitlines()[1:]
    return [line.split(",")[0] for line in lines]


def query(run: Path, sql: str, params=None) -> list[tuple]:
    con = duckdb.connect(str(run / "results" / "radflow.duckdb"), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def settings_id_of(run: Path, path: str) -> str:
    from radflow.settings import Settings

    return Settings.from_yaml(REPO / path).settings_id


def test_every_modality_gets_features_with_its_own_settings_only(run):
    pairs = query(run, "SELECT DISTINCT s.modality, f.settings_id FROM features f JOIN scans s USING (case_id, scan)")
    assert sorted(pairs) == sorted((m, settings_id_of(run, p)) for m, p in SETTINGS.items())
    labels = query(run, "SELECT modality, timepoint, list(DISTINCT scan ORDER BY scan) FROM scans GROUP BY ALL "
                        "ORDER BY ALL")
    assert labels == [("CT", 0, ["retest", "test"]), ("CT", 1, ["fu1"]), ("MR", 0, ["mr_test"]),
                      ("MR", 1, ["mr_fu1"]), ("PT", 0, ["pt_test"]), ("PT", 1, ["pt_fu1"])]
    days = query(run, "SELECT min(days_from_baseline), max(days_from_baseline) FROM scans WHERE timepoint = 1")[0]
    assert 84 <= days[0] <= days[1] <= 104  # the demo's follow-up interval, through the date shift


def test_broken_pet_tags_fail_one_scan_with_a_reason_and_the_rest_goes_on(run):
    demo = run / "resources" / "demo"
    case = case_id_of(_patient_ids(demo)[BROKEN_PATIENT], DEMO_KEY)
    rows = query(run, "SELECT scan, check_code, severity, message FROM qc WHERE case_id = ? AND check_code LIKE 'PET%'",
                 [case])
    assert rows == [("pt_fu1", "PET_TAGS_MISSING", "fail", "SUV needs the DICOM tag PatientWeight, which is missing "
                                                           "or empty")]
    assert query(run, "SELECT count(*) FROM features WHERE case_id = ? AND scan = 'pt_fu1'", [case])[0][0] == 0
    assert query(run, "SELECT count(*) FROM scans WHERE status = 'fail'")[0][0] == 1
    assert query(run, "SELECT count(DISTINCT case_id) FROM delta_features WHERE followup_scan = 'pt_fu1'")[0][0] \
        == N_PATIENTS - 1


def hand_suv(files: list[Path]) -> tuple[np.ndarray, float]:
    """(SUVbw volume sorted by slice position, factor) from the DICOM tags, by the textbook formula."""
    slices = sorted((pydicom.dcmread(f) for f in files), key=lambda ds: float(ds.ImagePositionPatient[2]))
    first = slices[0]
    info = first.RadiopharmaceuticalInformationSequence[0]

    def seconds(tm: str) -> int:
        return int(tm[:2]) * 3600 + int(tm[2:4]) * 60 + int(tm[4:6])

    elapsed = seconds(first.SeriesTime) - seconds(info.RadiopharmaceuticalStartTime)
    decayed = float(info.RadionuclideTotalDose) * math.exp(-math.log(2) * elapsed / float(info.RadionuclideHalfLife))
    factor = float(first.PatientWeight) * 1000.0 / decayed
    volume = np.stack([ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in slices])
    return volume * factor, factor


def test_pet_voxels_are_suv_bw_as_computed_by_hand(run):
    demo = run / "resources" / "demo"
    patient = _patient_ids(demo)[0]
    case = case_id_of(patient, DEMO_KEY)
    expected, factor = hand_suv(pet_files(demo, patient, 0))
    ingested = next((run / "interim" / "batches").glob(f"*/volumes/{case}_pt_test_image.nii.gz"))
    volume = sitk.GetArrayFromImage(sitk.ReadImage(str(ingested)))
    np.testing.assert_allclose(volume, expected, rtol=1e-6, atol=1e-6)
    manifest = json.loads((ingested.parent.parent / "ingest.json").read_text())
    meta = next(s["meta"] for s in manifest["scans"] if s["case_id"] == case and s["scan"] == "pt_test")
    assert meta["suv_factor"] == pytest.approx(factor, rel=1e-9)
    units = query(run, "SELECT modality, list(DISTINCT intensity_unit) FROM scans WHERE status != 'fail' GROUP BY ALL "
                       "ORDER BY ALL")
    assert units == [("CT", ["HU"]), ("MR", ["arbitrary"]), ("PT", ["SUVbw"])]
    suv_max = query(run, "SELECT value FROM features WHERE case_id = ? AND scan = 'pt_test' AND ibsi_code = '84IY'",
                    [case])[0][0]
    assert 2.0 < suv_max < 15.0  # an FDG lesion, not Bq/ml
    by_name = query(run, "SELECT suv_max, suv_peak, mtv_ml, tlg FROM pet_measures WHERE case_id = ? AND scan = "
                         "'pt_test'", [case])[0]
    codes = dict(query(run, "SELECT ibsi_code, value FROM features WHERE case_id = ? AND scan = 'pt_test' AND "
                            "ibsi_code IN ('84IY', 'VJGA', 'RNU0', '99N0', 'Q4LE')", [case]))
    assert by_name == pytest.approx((codes["84IY"], codes["VJGA"], codes["RNU0"] / 1000, codes["99N0"] / 1000))
    assert by_name[3] == pytest.approx(by_name[2] * codes["Q4LE"], rel=1e-9)  # TLG = MTV x SUVmean


def test_delta_features_equal_the_differences_of_the_stored_features(run):
    rows = query(run, """
        SELECT d.followup_scan, d.delta_absolute, d.delta_relative, f.value - b.value, (f.value - b.value) / abs(b.value)
        FROM delta_features d
        JOIN features b ON b.case_id = d.case_id AND b.scan = d.baseline_scan AND b.roi = d.roi
             AND b.settings_id = d.settings_id AND b.ibsi_code = d.ibsi_code AND b.aggregation = d.aggregation
        JOIN features f ON f.case_id = d.case_id AND f.scan = d.followup_scan AND f.roi = d.roi
             AND f.settings_id = d.settings_id AND f.ibsi_code = d.ibsi_code AND f.aggregation = d.aggregation
        WHERE b.value IS NOT NULL AND f.value IS NOT NULL AND isfinite(b.value) AND isfinite(f.value)""")
    assert {r[0] for r in rows} == {"fu1", "pt_fu1", "mr_fu1"}
    absolute = np.array([(r[1], r[3]) for r in rows], dtype=float)
    np.testing.assert_array_equal(absolute[:, 0], absolute[:, 1])
    relative = np.array([(r[2], r[4]) for r in rows if r[2] is not None and math.isfinite(r[2])], dtype=float)
    np.testing.assert_allclose(relative[:, 0], relative[:, 1], rtol=1e-12)
    n_delta = query(run, "SELECT count(*) FROM delta_features")[0][0]
    assert len(rows) == query(run, "SELECT count(*) FROM delta_features WHERE baseline_value IS NOT NULL AND "
                                   "followup_value IS NOT NULL AND isfinite(baseline_value) AND "
                                   "isfinite(followup_value)")[0][0] <= n_delta


def test_sdc_equals_its_formula_on_the_test_retest_pairs(run):
    ct = settings_id_of(run, SETTINGS["CT"])
    for code in ("RNU0", "Q4LE"):  # mesh volume, mean intensity
        pairs = query(run, """SELECT max(value) FILTER (scan = 'test'), max(value) FILTER (scan = 'retest')
                              FROM features WHERE settings_id = ? AND ibsi_code = ? AND scan IN ('test', 'retest')
                              GROUP BY case_id""", [ct, code])
        d = np.array([r - t for t, r in pairs], dtype=float)
        sdc = {v for (v,) in query(run, "SELECT DISTINCT sdc FROM delta_features WHERE settings_id = ? AND "
                                        "ibsi_code = ?", [ct, code])}
        assert len(d) == N_PATIENTS and len(sdc) == 1
        assert sdc.pop() == pytest.approx(1.96 * d.std(ddof=1), rel=1e-9)
    # PET and MR have no retest here: no SDC, and exceeds_sdc unknown
    assert query(run, "SELECT count(*) FROM delta_features WHERE followup_scan != 'fu1' AND (sdc IS NOT NULL OR "
                      "exceeds_sdc IS NOT NULL)")[0][0] == 0


def test_a_delta_model_runs_through_the_nested_cv(run):
    models = query(run, "SELECT model_id, status, n_cases, n_events FROM models")
    assert models == [("binary.logistic_l2.radiomics", "ok", N_PATIENTS, 5)]
    features = query(run, "SELECT feature FROM model_features WHERE in_final_model")
    assert features and all(name.startswith("delta_relative: ") for (name,) in features)
    auc = query(run, "SELECT value FROM metrics WHERE metric = 'auc' AND validation = 'cv'")[0][0]
    assert 0.0 <= auc <= 1.0


def test_no_result_file_carries_identifiers_or_uids(run):
    phi = phi_values(run / "resources" / "demo", include_uids=True)
    phi |= {part for value in phi for part in value.split("^") if len(part) >= 4}
    assert len(phi) > N_PATIENTS * 7 * 16  # every slice UID of every series is listed
    leaks = []
    for path in (p for p in (run / "results").rglob("*") if p.is_file()):
        data = path.read_bytes()
        leaks += [(path.name, value) for value in phi if value.encode() in data]
    assert not leaks, leaks[:10]
