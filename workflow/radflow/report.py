"""Figures and tables for ``snakemake --report``: the QC summary and feature distributions per scan."""
from __future__ import annotations

import html
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

# A few features that show size, intensity and texture, by IBSI code (used when present).
SHOWCASE = ["RNU0", "Q4LE", "ECT3", "TLU2", "ACUI", "IB1Z", "QCDE", "HV1J"]


def _table(header: list[str], rows) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape('' if c is None else str(c))}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _has_column(con: duckdb.DuckDBPyConnection, table: str, column: str) -> bool:
    return bool(con.execute("SELECT count(*) FROM information_schema.columns WHERE table_name = ? AND column_name = ?",
                            [table, column]).fetchone()[0])


def qc_summary_html(con: duckdb.DuckDBPyConnection, overlays: list[str] | None = None) -> str:
    """The cohort's QC at a glance: cases and scans by status (per centre when the clinical table has one), every
    check with what it means and its pass/warn/fail counts, every failure and warning with its reason, and links
    to the mask-overlay contact sheets (``overlays``: paths relative to the HTML file)."""
    from radflow.qc import CHECKS

    n_cases, n_ok = con.execute("SELECT count(*), count(*) FILTER (status != 'fail') FROM cases").fetchone()
    by_status = con.execute(
        "SELECT 'cases', count(*) FILTER (status = 'pass'), count(*) FILTER (status = 'warn'), "
        "count(*) FILTER (status = 'fail') FROM cases UNION ALL "
        "SELECT 'scans', count(*) FILTER (status = 'pass'), count(*) FILTER (status = 'warn'), "
        "count(*) FILTER (status = 'fail') FROM scans").fetchall()
    per_centre = []
    if _has_column(con, "clinical", "centre"):
        per_centre = con.execute(
            "SELECT coalesce(CAST(k.centre AS VARCHAR), '(not in clinical table)'), count(*), "
            "count(*) FILTER (c.status = 'pass'), count(*) FILTER (c.status = 'warn'), "
            "count(*) FILTER (c.status = 'fail') FROM cases c LEFT JOIN clinical k USING (case_id) "
            "GROUP BY ALL ORDER BY 1").fetchall()
    counts = con.execute(
        "SELECT check_code, count(*) FILTER (severity = 'pass'), count(*) FILTER (severity = 'warn'), "
        "count(*) FILTER (severity = 'fail') FROM qc GROUP BY check_code ORDER BY check_code"
    ).fetchall()
    counts = [(code, CHECKS.get(code, ("", ""))[1], p, w, f) for code, p, w, f in counts]
    problems = {
        severity: con.execute(
            "SELECT case_id, scan, roi, check_code, message FROM qc WHERE severity = ? ORDER BY case_id, scan, roi, "
            "check_code", [severity]).fetchall()
        for severity in ("fail", "warn")
    }
    sheets = "".join(f"<li><a href='{html.escape(p)}'>{html.escape(Path(p).stem)}</a></li>" for p in overlays or [])
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>radflow QC summary</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:2px 8px;text-align:left}</style></head><body>"
        f"<h1>QC summary</h1><p>{n_ok} of {n_cases} cases usable (pass or warn).</p>"
        + _table(["", "pass", "warn", "fail"], by_status)
        + (("<h2>Cases by centre</h2>" + _table(["centre", "cases", "pass", "warn", "fail"], per_centre))
           if per_centre else "")
        + "<h2>Checks</h2>"
        + _table(["check", "what it means when it does not pass", "pass", "warn", "fail"], counts)
        + "<h2>Failures</h2>"
        + (_table(["case", "scan", "roi", "check", "reason"], problems["fail"]) if problems["fail"] else "<p>none</p>")
        + "<h2>Warnings</h2>"
        + (_table(["case", "scan", "roi", "check", "reason"], problems["warn"]) if problems["warn"] else "<p>none</p>")
        + ("<h2>Mask overlays</h2><ul>" + sheets + "</ul>" if sheets else "")
        + "</body></html>\n"
    )


def feature_distributions_png(con: duckdb.DuckDBPyConnection, out: Path) -> None:
    settings_id = con.execute("SELECT min(settings_id) FROM features").fetchone()[0]
    shown = con.execute(
        "SELECT DISTINCT ibsi_code, feature, aggregation FROM features WHERE settings_id = ? AND list_contains(?, ibsi_code) "
        "ORDER BY ibsi_code, aggregation",
        [settings_id, SHOWCASE],
    ).fetchall()
    # one aggregation per feature is enough for a picture
    picked = {}
    for code, name, aggregation in shown:
        picked.setdefault(code, (name, aggregation))
    n = max(len(picked), 1)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.8 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_visible(False)
    for ax, (code, (name, aggregation)) in zip(axes.flat, sorted(picked.items())):
        data = con.execute(
            "SELECT scan, value FROM features WHERE settings_id = ? AND ibsi_code = ? AND aggregation = ? "
            "AND isfinite(value) ORDER BY scan, case_id",
            [settings_id, code, aggregation],
        ).fetchall()
        scans = sorted({s for s, _ in data}, key=lambda s: (s != "test", s != "retest", s))
        ax.set_visible(True)
        ax.boxplot([[v for s, v in data if s == scan] for scan in scans], tick_labels=scans)
        title = name if aggregation == "none" else f"{name}\n({aggregation})"
        ax.set_title(f"{title} [{code}]", fontsize=8)
        ax.tick_params(labelsize=7)
    if not picked:
        axes.flat[0].set_visible(True)
        axes.flat[0].text(0.5, 0.5, "no features stored", ha="center")
    fig.tight_layout()
    fig.savefig(out, dpi=110, metadata={"Software": None})  # no timestamp: identical bytes on rerun
    plt.close(fig)


def write_report_figures(database: Path, qc_html: Path, distributions_png: Path) -> None:
    qc_html.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database), read_only=True)
    try:
        overlays = sorted(qc_html.parent.glob("overlays/*.png"))  # written by the qc jobs, before the store job
        qc_html.write_text(qc_summary_html(con, [str(p.relative_to(qc_html.parent)) for p in overlays]))
        feature_distributions_png(con, distributions_png)
    finally:
        con.close()
