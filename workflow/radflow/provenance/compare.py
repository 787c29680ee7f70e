"""``radflow diff A B``: what differs between two runs (result databases or run crates) and why.

What: per table, rows only in one run and rows whose values differ, keyed by the table's primary key; for feature
values per family, settings id and case, the count and the largest relative difference. Why: the run records
(code version, configuration digest), software versions, settings documents and input checksums, side by side.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from radflow import store

# The tables a rerun must reproduce exactly (``radflow rerun``), in report order.
RESULT_TABLES = ("features", "stability", "predictions", "metrics")


def open_results(path: Path) -> duckdb.DuckDBPyConnection:
    """A connection with every table of a result database, or of a run crate's ``tables/*.parquet``, as views."""
    path = Path(path)
    if path.is_dir():
        folder = path / "tables" if (path / "tables").is_dir() else path
        con = duckdb.connect()
        for parquet in sorted(folder.glob("*.parquet")):
            con.execute(f"CREATE VIEW {parquet.stem} AS SELECT * FROM read_parquet('{parquet}')")
        if not list(folder.glob("*.parquet")):
            raise FileNotFoundError(f"{path}: neither a result database nor a run crate with tables/*.parquet")
        return con
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such result database or run crate")
    return duckdb.connect(str(path), read_only=True)


def table_names(con) -> set[str]:
    return {t for (t,) in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}


def _rows(con, table: str) -> dict[tuple, tuple]:
    """{primary key: the other columns} of a table (columns of radflow's schema, in schema order)."""
    columns, key = store.SCHEMA[table][0], store.SCHEMA[table][1]
    present = {c for (c,) in con.execute(f"SELECT column_name FROM information_schema.columns "
                                          f"WHERE table_name = '{table}'").fetchall()}
    names = [name for name, _ in columns if name in present]
    key = [k for k in key if k in present]
    rest = [n for n in names if n not in key]
    rows = con.execute(f"SELECT {', '.join(key + rest)} FROM {table}").fetchall()
    return {tuple(row[:len(key)]): tuple(row[len(key):]) for row in rows}


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


def relative_difference(a, b) -> float:
    if not (isinstance(a, (int, float)) and isinstance(b, (int, float))) or a is None or b is None:
        return math.inf if not _same(a, b) else 0.0
    if math.isnan(a) or math.isnan(b):
        return 0.0 if math.isnan(a) and math.isnan(b) else math.inf
    scale = max(abs(a), abs(b))
    return 0.0 if scale == 0 else abs(a - b) / scale


@dataclass
class TableDiff:
    table: str
    only_a: list[tuple] = field(default_factory=list)
    only_b: list[tuple] = field(default_factory=list)
    changed: list[tuple] = field(default_factory=list)  # (key, a row, b row)

    @property
    def identical(self) -> bool:
        return not (self.only_a or self.only_b or self.changed)

    def summary(self, limit: int = 5) -> list[str]:
        if self.identical:
            return [f"{self.table}: identical"]
        lines = [f"{self.table}: {len(self.changed)} rows differ, {len(self.only_a)} only in A, "
                 f"{len(self.only_b)} only in B"]
        for label, keys in (("differs", [k for k, _, _ in self.changed]), ("only in A", self.only_a),
                            ("only in B", self.only_b)):
            for key in sorted(keys, key=str)[:limit]:
                lines.append(f"    {label}: {' | '.join(str(k) for k in key)}")
        return lines


def diff_table(con_a, con_b, table: str) -> TableDiff:
    result = TableDiff(table)
    a = _rows(con_a, table) if table in table_names(con_a) else {}
    b = _rows(con_b, table) if table in table_names(con_b) else {}
    result.only_a = [k for k in a if k not in b]
    result.only_b = [k for k in b if k not in a]
    result.changed = [(k, a[k], b[k]) for k in a if k in b and not all(map(_same, a[k], b[k]))]
    return result


def feature_breakdown(con_a, con_b) -> list[str]:
    """Changed feature values per family, settings id and case: count and largest relative difference."""
    a, b = _rows(con_a, "features"), _rows(con_b, "features")
    names = [n for n, _ in store.SCHEMA["features"][0]]
    key = store.SCHEMA["features"][1]
    rest = [n for n in names if n not in key]
    value_at, family_at = rest.index("value"), rest.index("family")
    groups: dict[tuple[str, str], list] = {}
    for k in a.keys() & b.keys():
        rel = relative_difference(a[k][value_at], b[k][value_at])
        case_id, settings_id = k[key.index("case_id")], k[key.index("settings_id")]
        for group in (("family", a[k][family_at]), ("settings", settings_id), ("case", case_id)):
            entry = groups.setdefault(group, [0, 0, 0.0])
            entry[0] += 1
            if rel > 0:
                entry[1] += 1
                entry[2] = max(entry[2], rel)
    lines = []
    for kind in ("family", "settings", "case"):
        rows = sorted((name, *values) for (k, name), values in groups.items() if k == kind)
        changed = [r for r in rows if r[2]]
        lines.append(f"  per {kind}: {len(changed)} of {len(rows)} with changed values")
        for name, n, n_changed, max_rel in changed:
            lines.append(f"    {name}: {n_changed} of {n} values differ, max relative difference {max_rel:.3g}")
    return lines


def _pairs(con, sql: str) -> dict:
    try:
        return dict(con.execute(sql).fetchall())
    except duckdb.Error:
        return {}


def reasons(con_a, con_b) -> list[str]:
    """Why two runs may differ: code version, configuration, software versions, settings and inputs."""
    lines = []
    run_a = _pairs(con_a, "SELECT 'code', code_version FROM run UNION ALL SELECT 'config', config_sha256 FROM run")
    run_b = _pairs(con_b, "SELECT 'code', code_version FROM run UNION ALL SELECT 'config', config_sha256 FROM run")
    for name, label in (("code", "code version"), ("config", "configuration sha256")):
        if run_a.get(name) != run_b.get(name):
            lines.append(f"  {label}: {run_a.get(name)} -> {run_b.get(name)}")
    software_a = _pairs(con_a, "SELECT package, version FROM software")
    software_b = _pairs(con_b, "SELECT package, version FROM software")
    for package in sorted(software_a.keys() | software_b.keys()):
        if software_a.get(package) != software_b.get(package):
            lines.append(f"  software {package}: {software_a.get(package)} -> {software_b.get(package)}")
    settings_a = _pairs(con_a, "SELECT settings_id, name FROM settings")
    settings_b = _pairs(con_b, "SELECT settings_id, name FROM settings")
    for settings_id in sorted(settings_a.keys() - settings_b.keys()):
        lines.append(f"  settings only in A: {settings_id} ({settings_a[settings_id]})")
    for settings_id in sorted(settings_b.keys() - settings_a.keys()):
        lines.append(f"  settings only in B: {settings_id} ({settings_b[settings_id]})")
    inputs_sql = ("SELECT case_id || ' ' || scan || ' ' || role, string_agg(sha256, ',' ORDER BY sha256) "
                  "FROM inputs GROUP BY ALL")
    inputs_a, inputs_b = _pairs(con_a, inputs_sql), _pairs(con_b, inputs_sql)
    changed = sorted(k for k in inputs_a.keys() | inputs_b.keys() if inputs_a.get(k) != inputs_b.get(k))
    if changed:
        lines.append(f"  input checksums differ for {len(changed)} case/scan/role groups: "
                     + ", ".join(k.strip() or "clinical table" for k in changed[:10]))
    return lines or ["  nothing recorded differs (same code, configuration, software, settings and inputs)"]


def diff(path_a: Path, path_b: Path, tables: tuple[str, ...] | None = None) -> tuple[bool, str]:
    """(identical, report) for two result databases or run crates."""
    con_a, con_b = open_results(path_a), open_results(path_b)
    try:
        names = tables or tuple(t for t in store.SCHEMA if t in table_names(con_a) | table_names(con_b)
                                and t not in ("files", "run"))
        diffs = [diff_table(con_a, con_b, t) for t in names]
        lines = [f"A: {path_a}", f"B: {path_b}", "", "What differs:"]
        for d in diffs:
            lines += ["  " + line for line in d.summary()]
        if "features" in names:
            lines += ["", "Feature values:", *feature_breakdown(con_a, con_b)]
        lines += ["", "Why (recorded differences):", *reasons(con_a, con_b)]
        return all(d.identical for d in diffs), "\n".join(lines) + "\n"
    finally:
        con_a.close()
        con_b.close()
