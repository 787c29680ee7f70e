"""DuckDB loading: reruns replace rows, never duplicate them, and never drop cases the run did not bring."""
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from radflow import store


def write_batch(folder: Path, case_ids: list[str], value: float) -> Path:
    folder.mkdir(parents=True)
    frames = {
        "cases": pd.DataFrame({"case_id": case_ids, "n_scans": 1, "status": "pass"}),
        "scans": pd.DataFrame({c: [None] * len(case_ids) for c in store.columns("scans")}).assign(case_id=case_ids, scan="test"),
        "masks": store.empty_frame("masks"),
        "qc": pd.DataFrame({"case_id": case_ids, "scan": "test", "roi": "GTV", "check_code": "MASK_EMPTY",
                            "severity": "pass", "message": "ok", "value": 1.0}),
        "features": pd.DataFrame({"case_id": case_ids, "scan": "test", "roi": "GTV", "settings_id": "s1",
                                  "family": "statistics", "feature": "Mean", "ibsi_code": "Q4LE",
                                  "aggregation": "none", "value": value, "reason": ""}),
        "features_qc": store.empty_frame("qc"),
    }
    for name, frame in frames.items():
        frame.to_parquet(folder / f"{name}.parquet", index=False)
    return folder


def load(database, batches, value_docs=({"settings_id": "s1", "name": "s", "document": {}},)):
    store.load_results(database, batches, list(value_docs), pd.DataFrame({"case_id": ["a"], "age": [60]}),
                       {"radflow": "0"}, [("x", "0" * 64, "qc")])


def test_rerun_replaces_rows_and_keeps_untouched_cases(tmp_path):
    database = tmp_path / "r.duckdb"
    load(database, [write_batch(tmp_path / "b0", ["a", "b"], 1.0)])
    load(database, [write_batch(tmp_path / "b1", ["b", "c"], 2.0)])
    con = duckdb.connect(str(database), read_only=True)
    values = dict(con.execute("SELECT case_id, value FROM features ORDER BY case_id").fetchall())
    assert values == {"a": 1.0, "b": 2.0, "c": 2.0}
    assert con.execute("SELECT count(*) FROM cases").fetchone()[0] == 3
    assert con.execute("SELECT count(*) FROM qc").fetchone()[0] == 3


def test_failed_load_leaves_the_database_as_it_was(tmp_path):
    database = tmp_path / "r.duckdb"
    load(database, [write_batch(tmp_path / "b0", ["a"], 1.0)])
    broken = write_batch(tmp_path / "b1", ["a"], 5.0)
    (broken / "features.parquet").write_text("not parquet")
    try:
        load(database, [broken])
    except Exception:
        pass
    else:
        raise AssertionError("loading a corrupt Parquet file should fail")
    con = duckdb.connect(str(database), read_only=True)
    assert con.execute("SELECT value FROM features").fetchall() == [(1.0,)]


def table_rows(database: Path) -> dict[str, list]:
    con = duckdb.connect(str(database), read_only=True)
    try:
        tables = [t for (t,) in con.execute("SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}
    finally:
        con.close()


def test_failed_load_replaces_nothing_and_leaves_no_half_built_file(tmp_path):
    database = tmp_path / "r.duckdb"
    load(database, [write_batch(tmp_path / "b0", ["a"], 1.0)])
    before, inode = table_rows(database), database.stat().st_ino
    broken = write_batch(tmp_path / "b1", ["a"], 5.0)
    (broken / "qc.parquet").write_text("not parquet")
    with pytest.raises(duckdb.Error):
        load(database, [broken])
    assert table_rows(database) == before and database.stat().st_ino == inode
    assert not store.building_path(database).exists()


def test_an_empty_features_table_is_refused_and_the_previous_database_kept(tmp_path):
    database = tmp_path / "r.duckdb"
    batch = write_batch(tmp_path / "b0", ["a"], 1.0)
    pd.DataFrame([("a", "test", "GTV", "FEATURE_EXTRACTION", "fail", "s: ValueError: boom", None)],
                 columns=store.columns("qc")).to_parquet(batch / "features_qc.parquet")
    store.empty_frame("features").to_parquet(batch / "features.parquet")
    with pytest.raises(store.NoFeaturesError, match=r"no feature values: every ROI of the 1 case\(s\) failed "
                                                    r"\(FEATURE_EXTRACTION x 1\)"):
        store.load_results(database, [batch], [{"settings_id": "s1", "name": "s", "document": {}}], None,
                           {"radflow": "0"}, [],
                           require_features=True)
    assert not database.exists() and not store.building_path(database).exists()


def test_a_case_whose_every_roi_failed_extraction_is_not_pass(tmp_path):
    database = tmp_path / "r.duckdb"
    batch = write_batch(tmp_path / "b0", ["a", "b", "c"], 1.0)
    frames = {name: pd.read_parquet(batch / f"{name}.parquet") for name in ("features", "qc", "scans", "cases")}
    # case a: its only ROI failed; case b: two scans, the retest's ROI failed; case c untouched
    frames["scans"] = pd.concat([frames["scans"], frames["scans"].iloc[[1]].assign(scan="retest")])
    frames["scans"]["status"] = "pass"
    frames["features"] = pd.concat([frames["features"][frames["features"].case_id != "a"]])
    extraction = pd.DataFrame([("a", "test", "GTV", "ROI_TOO_LARGE", "fail", "needs 40 GB", 4e10),
                               ("b", "retest", "GTV", "FEATURE_EXTRACTION", "fail", "MemoryError", None)],
                              columns=store.columns("qc"))
    for name in ("features", "scans"):
        frames[name].to_parquet(batch / f"{name}.parquet")
    extraction.to_parquet(batch / "features_qc.parquet")
    load(database, [batch])
    rows = table_rows(database)
    assert {(c, st) for c, _, st in rows["cases"]} == {("a", "fail"), ("b", "warn"), ("c", "pass")}
    scans = {(r[0], r[1]): r[12] for r in rows["scans"]}
    assert scans == {("a", "test"): "fail", ("b", "test"): "pass", ("b", "retest"): "fail", ("c", "test"): "pass"}


def big_batch(folder: Path, n_rows: int) -> Path:
    import numpy as np

    folder = write_batch(folder, ["a", "b"], 2.0)
    n = n_rows // 2
    pd.DataFrame({"case_id": np.repeat(["a", "b"], n), "scan": "test", "roi": "GTV", "settings_id": "s1",
                  "family": "statistics", "feature": "f", "ibsi_code": np.tile(np.arange(n).astype(str), 2),
                  "aggregation": "none", "value": np.arange(2 * n, dtype=float), "reason": ""}
                 ).to_parquet(folder / "features.parquet")
    return folder


@pytest.mark.slow
def test_kill_9_of_the_store_process_mid_write_leaves_the_last_good_database(tmp_path):
    """The real `radflow store` command, killed with SIGKILL while it builds the new database."""
    import signal
    import subprocess
    import sys
    import time

    from conftest import REPO
    from radflow.settings import Settings

    database = tmp_path / "results" / "radflow.duckdb"
    clinical = tmp_path / "clinical.parquet"
    pd.DataFrame({"case_id": ["a", "c"], "age": [60, 70]}).to_parquet(clinical)
    settings = tmp_path / "s.yaml"
    settings.write_text("name: s\n")
    settings_id = Settings.from_yaml(settings).settings_id

    def with_settings_id(batch: Path) -> Path:
        features = pd.read_parquet(batch / "features.parquet")
        features.assign(settings_id=settings_id).to_parquet(batch / "features.parquet")
        return batch

    def run_store(batch: Path) -> subprocess.Popen:
        with_settings_id(batch)
        return subprocess.Popen([sys.executable, "-m", "radflow", "store", str(database), "--receipt",
                                 str(tmp_path / "results" / "receipt.json"), "--batches", str(batch / "cases.parquet"),
                                 "--clinical", str(clinical), "--settings", str(settings)],
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)

    first = run_store(write_batch(tmp_path / "b0", ["a", "c"], 1.0))
    assert first.wait(timeout=120) == 0, first.stderr.read()
    last_good = table_rows(database)
    assert len(last_good["features"]) == 2

    killed = run_store(big_batch(tmp_path / "b1", 3_000_000))
    building = store.building_path(database)
    deadline = time.monotonic() + 120
    while not building.exists() and killed.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    time.sleep(0.2)  # inside the load now
    assert killed.poll() is None, "the store finished before it could be killed: make the batch larger"
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=30) == -signal.SIGKILL
    assert building.exists()  # it really was killed mid-write, before the replacement
    assert table_rows(database) == last_good

    # the next store discards the half-built copy and keeps case c, which this run does not bring
    again = run_store(write_batch(tmp_path / "b2", ["a"], 3.0))
    assert again.wait(timeout=120) == 0, again.stderr.read()
    assert not building.exists()
    values = dict((r[0], r[8]) for r in table_rows(database)["features"])
    assert values == {"a": 3.0, "c": 1.0}
