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


def qc_summary_html(con: duckdb.DuckDBPyConnection) -> str:
    counts = con.execute(
        "SELECT check_code, count(*) FILTER (severity = 'pass'), count(*) FILTER (severity = 'warn'), "
        "count(*) FILTER (severity = 'fail') FROM qc GROUP BY check_code ORDER BY check_code"
    ).fetchall()
    failures = con.execute(
        "SELECT case_id, scan, roi, check_code, message FROM qc WHERE severity = 'fail' ORDER BY case_id, scan, roi"
    ).fetchall()
    n_cases, n_ok = con.execute("SELECT count(*), count(*) FILTER (status != 'fail') FROM cases").fetchone()

    def table(header, rows):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>radflow QC summary</title>"
        "<style>body{font-family:sans-serif}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #999;padding:2px 8px}</style></head><body>"
        f"<h1>QC summary</h1><p>{n_ok} of {n_cases} cases usable.</p>"
        + table(["check", "pass", "warn", "fail"], counts)
        + "<h2>Failures</h2>"
        + (table(["case", "scan", "roi", "check", "reason"], failures) if failures else "<p>none</p>")
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
        qc_html.write_text(qc_summary_html(con))
        feature_distributions_png(con, distributions_png)
    finally:
        con.close()
