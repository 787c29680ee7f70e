"""A results database written before the scans table had timepoints gains the new columns on the next store."""
from __future__ import annotations

import duckdb

from radflow import store


def test_an_older_scans_table_gains_the_new_columns_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE scans (case_id VARCHAR, scan VARCHAR, status VARCHAR, PRIMARY KEY (case_id, scan))")
    con.execute("INSERT INTO scans VALUES ('case-1', 'test', 'pass')")
    store.create_schema(con)
    columns = [name for (name,) in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'scans' ORDER BY ordinal_position"
    ).fetchall()]
    assert {"timepoint", "days_from_baseline", "intensity_unit"} <= set(columns)
    assert con.execute("SELECT case_id, timepoint FROM scans").fetchall() == [("case-1", None)]
    store.create_schema(con)  # idempotent
    assert con.execute("SELECT count(*) FROM pet_measures").fetchone()[0] == 0
    con.close()
