"""What a run did, for the terminal at its end (the Snakefile's ``onsuccess`` / ``onerror``).

Success: cases pass / warn / fail, feature rows, stable features, each model's headline metric (AUC or C-index)
with its 95 % interval and permutation p-value, and where the database, RDF, RO-Crate and report are.
Failure: for every failed job, its rule and the failing rule's own one-line reason, read from the job's log (the
last line that looks like an error: a Python exception, ``error``/``failed`` message), with the log's path.
"""
from __future__ import annotations

import math
import re
from pathlib import Path

# Lines of a rule's log that state why it failed, most specific first.
_ERROR_PATTERNS = (
    re.compile(r"^\s*[A-Za-z_][\w.]*(Error|Exception|Exit)\b.*"),  # Python exception line "ValueError: ..."
    re.compile(r"^\s*(radflow|error|ERROR|Error)\b.*:.*"),  # "radflow: error: ...", "ERROR x: ..."
    re.compile(r".*\b(error|failed|cannot|not found|No such file)\b.*", re.IGNORECASE),
)
# Snakemake's own log: "Error in rule model:" then indented "log: results/logs/model.log (check log file(s) ...)".
_RULE_ERROR = re.compile(r"^Error in rule (\S+):")
_RULE_LOG = re.compile(r"^\s+log:\s+(.+?)(\s+\(check log file.*\))?$")


def _fmt(value) -> str:
    return "NA" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.3f}"


def success_summary(database: Path, results: Path) -> str:
    """Summary of a finished run from its database (paths relative to the working directory)."""
    import duckdb

    lines = ["radflow run finished."]
    if not database.exists():
        return "\n".join(lines + [f"  no database at {database}"])
    con = duckdb.connect(str(database), read_only=True)

    def one(sql: str, params: list | None = None) -> tuple:
        row = con.execute(sql, params or []).fetchone()
        return row if row is not None else (0, 0, 0)

    try:
        def table(name):
            return one("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name])[0] > 0

        passed, warned, failed = one(
            "SELECT count(*) FILTER (status = 'pass'), count(*) FILTER (status = 'warn'), "
            "count(*) FILTER (status = 'fail') FROM cases")
        lines.append(f"  cases: {passed} pass, {warned} warn, {failed} fail")
        if table("clinical") and one("SELECT count(*) FROM clinical")[0]:  # empty: no clinical table configured
            total, matched = one("SELECT count(*), count(*) FILTER (case_id IN (SELECT case_id FROM clinical)) "
                                 "FROM cases")
            if matched < total:
                lines.append(f"  clinical: {total - matched} of {total} cases have no row in the clinical table "
                             "(its patient_id must equal the DICOM PatientID exactly; "
                             f"{results / 'logs' / 'clinical.log'} names the rows that match no case)")
        lines.append(f"  feature rows: {one('SELECT count(*) FROM features')[0]}")
        if table("stable_features"):
            lines.append(f"  stable features: {one('SELECT count(*) FROM stable_features')[0]}")
        if table("models"):
            for model_id, status in con.execute("SELECT model_id, status FROM models ORDER BY model_id").fetchall():
                if status != "ok":
                    lines.append(f"  model {model_id}: {status}")
                    continue
                rows = dict(((m, v), (value, low, high)) for m, v, value, low, high in con.execute(
                    "SELECT metric, validation, value, ci_lower, ci_upper FROM metrics WHERE model_id = ?",
                    [model_id]).fetchall())
                for (metric, validation) in (("auc", "cv"), ("c_index", "cv"), ("auc", "external"),
                                             ("c_index", "external")):
                    if (metric, validation) in rows:
                        value, low, high = rows[(metric, validation)]
                        text = f"  model {model_id}: {metric} ({validation}) {_fmt(value)} [{_fmt(low)}, {_fmt(high)}]"
                        if validation == "cv" and ("permutation_p_value", "cv") in rows:
                            text += f", permutation p {_fmt(rows[('permutation_p_value', 'cv')][0])}"
                        if ("delong_p_value", "cv") in rows and validation == "cv":
                            text += (f", vs clinical: AUC difference {_fmt(rows[('delong_auc_difference', 'cv')][0])}"
                                     f" (DeLong p {_fmt(rows[('delong_p_value', 'cv')][0])})")
                        lines.append(text)
    finally:
        con.close()
    lines.append(f"  database: {database}")
    for label, candidates in (("RDF", ["rdf/radflow.ttl"]),
                              ("RO-Crate", ["ro-crate-metadata.json", "crate/ro-crate-metadata.json"]),
                              ("report", ["report/index.html"])):
        found = [results / c for c in candidates if (results / c).exists()]
        lines.append(f"  {label}: {found[0] if found else '(not produced)'}")
    return "\n".join(lines)


def reason_from_log(log: Path) -> str:
    """The failing step's own one-line reason from its log: the last line matching the most specific pattern."""
    try:
        lines = [line.rstrip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError as error:
        return f"(log {log} unreadable: {error.strerror})"
    if not lines:
        return "(the log is empty)"
    for pattern in _ERROR_PATTERNS:
        for line in reversed(lines):
            if pattern.match(line):
                return line.strip().removeprefix("radflow: error: ")  # the CLI's one-line form: the reason itself
    return lines[-1].strip()


def failed_jobs(snakemake_log: Path) -> list[tuple[str, Path | None]]:
    """(rule, its log file or None) of every "Error in rule" block of Snakemake's own log."""
    jobs: list[tuple[str, Path | None]] = []
    rule = None
    try:
        text = snakemake_log.read_text(errors="replace").splitlines()
    except OSError:
        return jobs
    for line in text:
        started = _RULE_ERROR.match(line)
        if started:
            if rule is not None:
                jobs.append((rule, None))
            rule = started.group(1)
            continue
        if rule is not None:
            found = _RULE_LOG.match(line)
            if found:
                jobs.append((rule, Path(found.group(1).split(",")[0].strip())))
                rule = None
            elif not line.startswith((" ", "\t")) and line.strip():
                jobs.append((rule, None))
                rule = None
    if rule is not None:
        jobs.append((rule, None))
    return list(dict.fromkeys(jobs))


def failure_summary(snakemake_log: Path) -> str:
    """Which rules failed and each one's own reason (from its log), for ``onerror``."""
    jobs = failed_jobs(snakemake_log)
    if not jobs:
        return f"radflow run failed; no failed rule found in {snakemake_log} (see that log)."
    lines = ["radflow run failed:"]
    for rule, log in jobs:
        if log is None:
            lines.append(f"  rule {rule}: failed (it has no log file; see {snakemake_log})")
        else:
            lines.append(f"  rule {rule}: {reason_from_log(log)}   [log: {log}]")
    return "\n".join(lines)
