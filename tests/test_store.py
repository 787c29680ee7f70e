"""DuckDB loading: reruns replace rows, never duplicate them, and never drop cases the run did not bring."""
from pathlib import Path

import duckdb
import pandas as pd

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
