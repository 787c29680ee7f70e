"""The single self-contained HTML report of a run (``results/report/index.html``): every image embedded as a
``data:`` URI, so the one file can be mailed, archived or opened offline.

Sections: the run at a glance; QC per centre with the mask-overlay contact sheets; feature distributions; ICC plots;
model performance (intervals, permutation p-values, DeLong test of combined vs clinical) with ROC, calibration and
decision curves (net benefit) and Kaplan-Meier curves of the survival models' cross-validated risk groups; a model
card per model (features, coefficients, outer-fold selection frequency and each feature's ICC); the RQS and TRIPOD+AI
checklists with what the user must still supply.
"""
from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path

import duckdb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from radflow.modelling.plots import calibration_bins, roc_points, unit_square_axes  # noqa: E402

STYLE = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:1em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:.6em 0;font-size:.88em}td,th{border:1px solid #bbb;padding:2px 7px;
text-align:left;vertical-align:top}th{background:#eee}img{max-width:100%;border:1px solid #ddd;margin:.3em 0}
.evidenced{background:#e3f4e3}.partly{background:#fff6d6}.not{background:#fbe1e1}.user{background:#e8eefb}
nav a{margin-right:1em}h2{border-bottom:2px solid #ccc;margin-top:1.6em}.note{color:#555;font-size:.9em}
"""


#: Bytes of HTML the mask-overlay sheets may take at most. A sheet row (one case, scan and ROI) is about 24 kB of PNG,
#: so a cohort of thousands of cases would make a report of hundreds of MB, which no browser opens comfortably; beyond
#: this the sheets are embedded as JPEG at a reduced size, down to MIN_OVERLAY_SCALE, and then only as many as fit,
#: batches with failed or warned cases first. Every sheet stays full size in results/report/overlays/.
OVERLAY_BUDGET_BYTES = 20_000_000
MIN_OVERLAY_SCALE = 0.35
#: QC rows (failures and warnings) listed in the report; the qc table of the database holds them all.
QC_TABLE_ROWS = 500


def data_uri_png(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _img(data: bytes, alt: str, mime: str = "png") -> str:
    uri = data_uri_png(data) if mime == "png" else f"data:image/{mime};base64," + base64.b64encode(data).decode("ascii")
    return f"<img alt='{html.escape(alt)}' src='{uri}'>"


def _figure_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return buffer.getvalue()


def _cell(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.3g}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame, row_class: str | None = None) -> str:
    if frame.empty:
        return "<p class='note'>none</p>"
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns if c != row_class)
    body = []
    for _, row in frame.iterrows():
        css = f" class='{str(row[row_class]).split()[0]}'" if row_class else ""
        body.append(f"<tr{css}>" + "".join(f"<td>{_cell(row[c])}</td>" for c in frame.columns if c != row_class)
                    + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _has_table(con, name: str) -> bool:
    return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]).fetchone()[0] > 0


def _query(con, sql: str, table: str) -> pd.DataFrame:
    return con.execute(sql).df() if _has_table(con, table) else pd.DataFrame()


def net_benefit(y: np.ndarray, p: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Net benefit of treating when p >= t (Vickers & Elkin 2006): TP/n - FP/n * t / (1 - t), for each t."""
    y = np.asarray(y).astype(bool)
    p = np.asarray(p, dtype=float)
    n = y.size
    treated = p[None, :] >= thresholds[:, None]
    tp = (treated & y[None, :]).sum(axis=1) / n
    fp = (treated & ~y[None, :]).sum(axis=1) / n
    return tp - fp * thresholds / (1 - thresholds)


def model_curves_png(predictions: pd.DataFrame) -> dict[str, bytes]:
    """ROC, calibration and decision curves of the binary models' out-of-fold predictions (repeats pooled)."""
    binary = predictions[predictions["probability"].notna() & (predictions["validation"] == "cv")] \
        if len(predictions) else predictions
    groups = list(binary.groupby("model_id", sort=True)) if len(binary) else []
    out = {}
    for kind in ("roc", "calibration", "decision"):
        fig, ax = plt.subplots(figsize=(6.0, 4.6))
        if not groups:
            ax.text(0.5, 0.5, "no binary model was fitted", ha="center", va="center")
            ax.set_axis_off()
            out[kind] = _figure_bytes(fig)
            continue
        thresholds = np.linspace(0.01, 0.8, 80)
        for model_id, group in groups:
            y = group["outcome"].to_numpy().astype(int)
            p = group["probability"].to_numpy()
            if kind == "roc":
                fpr, tpr = roc_points(y, p)
                ax.step(fpr, tpr, where="post", label=model_id)
            elif kind == "calibration":
                predicted, observed = calibration_bins(y, p)
                ax.plot(predicted, observed, marker="o", label=model_id)
            else:
                ax.plot(thresholds, net_benefit(y, p, thresholds), label=model_id)
        if kind == "decision":
            y = groups[0][1]["outcome"].to_numpy().astype(int)
            prevalence = y.mean()
            ax.plot(thresholds, prevalence - (1 - prevalence) * thresholds / (1 - thresholds), ":", color="grey",
                    label="treat all")
            ax.axhline(0, color="black", lw=0.8, label="treat none")
            ax.set_ylim(-0.05, max(prevalence, 0.05) * 1.1)
            ax.set_xlabel("threshold probability")
            ax.set_ylabel("net benefit")
            ax.set_title("Decision curves (out-of-fold predictions)")
        else:
            unit_square_axes(ax, kind)
        ax.legend(fontsize=7)
        fig.tight_layout()
        out[kind] = _figure_bytes(fig)
    return out


def risk_groups(group: pd.DataFrame) -> np.ndarray:
    """Whether each out-of-fold prediction is high risk: above its own test fold's median risk score (low: at or
    below it). Per fold, because each fold's model scores on its own scale; no outcome is used."""
    return group.groupby("fold")["risk_score"].transform(lambda r: r > r.median()).to_numpy(dtype=bool)


def survival_curves_png(predictions: pd.DataFrame) -> bytes | None:
    """Kaplan-Meier curves of each survival model's cross-validated risk groups (first repeat, so that each case
    counts once; ``risk_groups``), with the log-rank p-value; None when no survival model was fitted."""
    if not len(predictions):
        return None
    survival = predictions[predictions["risk_score"].notna() & (predictions["validation"] == "cv")
                           & (predictions["repeat"] == 0)]
    groups = list(survival.groupby("model_id", sort=True))
    if not groups:
        return None
    from sksurv.compare import compare_survival
    from sksurv.nonparametric import kaplan_meier_estimator

    from radflow.modelling.targets import survival_target

    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 4.2), squeeze=False)
    for ax, (model_id, group) in zip(axes[0], groups):
        time = group["survival_time"].to_numpy(dtype=float)
        event = group["outcome"].to_numpy() > 0
        high = risk_groups(group)
        for label, members, colour in (("low risk", ~high, "tab:blue"), ("high risk", high, "tab:red")):
            if members.any():
                at, surviving = kaplan_meier_estimator(event[members], time[members])
                ax.step(np.r_[0.0, at], np.r_[1.0, surviving], where="post", color=colour,
                        label=f"{label} (n={int(members.sum())}, {int(event[members].sum())} events)")
        title = model_id
        if high.any() and (~high).any():
            p_value = compare_survival(survival_target(time, event), high.astype(int))[1]
            title += f"\nlog-rank p = {p_value:.3g}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("time")
        ax.set_ylabel("survival probability")
        ax.set_ylim(0, 1.02)
        ax.legend(fontsize=7)
    fig.suptitle("Kaplan-Meier by cross-validated risk group (split at each test fold's median)", fontsize=9)
    fig.tight_layout()
    return _figure_bytes(fig)


def _summary(con) -> str:
    cases = con.execute("SELECT count(*) FILTER (status = 'pass'), count(*) FILTER (status = 'warn'), "
                        "count(*) FILTER (status = 'fail') FROM cases").fetchone()
    n_features = con.execute("SELECT count(*) FROM features").fetchone()[0]
    stable = con.execute("SELECT count(*) FROM stable_features").fetchone()[0] \
        if _has_table(con, "stable_features") else 0
    return (f"<p>Cases: <b>{cases[0]}</b> pass, <b>{cases[1]}</b> warn, <b>{cases[2]}</b> fail. "
            f"Feature values: <b>{n_features}</b>. Stable features: <b>{stable}</b>.</p>")


def _qc_section(con, overlays: list[Path]) -> str:
    per_centre = pd.DataFrame()
    if _has_table(con, "clinical") and con.execute(
            "SELECT count(*) FROM information_schema.columns WHERE table_name = 'clinical' AND column_name = 'centre'"
    ).fetchone()[0]:
        per_centre = con.execute(
            "SELECT coalesce(CAST(k.centre AS VARCHAR), '(not in clinical table)') AS centre, count(*) AS cases, "
            "count(*) FILTER (c.status = 'pass') AS pass, count(*) FILTER (c.status = 'warn') AS warn, "
            "count(*) FILTER (c.status = 'fail') AS fail FROM cases c LEFT JOIN clinical k USING (case_id) "
            "GROUP BY ALL ORDER BY 1").df()
    problems = con.execute("SELECT case_id, scan, roi, check_code, severity, message FROM qc "
                           "WHERE severity != 'pass' ORDER BY severity, case_id, scan, roi, check_code").df()
    listed = _table(problems.head(QC_TABLE_ROWS))
    if len(problems) > QC_TABLE_ROWS:
        counts = problems.groupby(["severity", "check_code"]).size().rename("rows").reset_index()
        listed = (_table(counts) + f"<p class='note'>The first {QC_TABLE_ROWS} of {len(problems)} rows (failures "
                  "first); the <code>qc</code> table of the database holds them all.</p>" + listed)
    flagged = set()
    if _has_table(con, "inputs"):
        flagged = {batch for (batch,) in con.execute(
            "SELECT DISTINCT i.batch FROM inputs i JOIN cases c USING (case_id) WHERE c.status != 'pass'").fetchall()}
    sheets = overlay_sheets(overlays, flagged)
    return ("<h3>Cases per centre</h3>" + _table(per_centre) + "<h3>Failures and warnings</h3>" + listed
            + "<h3>Mask overlays</h3>" + (sheets or "<p class='note'>no overlay sheets</p>"))


def overlay_sheets(overlays: list[Path], flagged: set[str], budget: int = OVERLAY_BUDGET_BYTES) -> str:
    """The batches' contact sheets as embedded images, within about ``budget`` bytes of HTML
    (``OVERLAY_BUDGET_BYTES``): as they are (PNG) when they fit, else as JPEG scaled down until they fit or reach
    ``MIN_OVERLAY_SCALE``, and then the first that fit, the batches in ``flagged`` (with a failed or warned case)
    first; a note says what was reduced or left out. The sheets are read one at a time (a large cohort's add up to
    hundreds of MB)."""
    ordered = sorted(overlays, key=lambda p: (p.stem not in flagged, p.stem))
    image_budget = budget * 3 // 4  # base64 makes 4 characters of every 3 bytes
    original = sum(p.stat().st_size for p in ordered)
    reduced = original > image_budget
    scale = _fitting_scale(ordered, original, image_budget) if reduced else 1.0
    parts: list[str] = []
    left_out: list[str] = []
    used = 0
    for path in ordered:
        data, mime = (_scaled_jpeg(path.read_bytes(), scale), "jpeg") if reduced else (path.read_bytes(), "png")
        if used + len(data) > image_budget and parts:
            left_out.append(path.name)
            continue
        used += len(data)
        parts.append(f"<h4>{html.escape(path.stem)}</h4>" + _img(data, f"mask overlays {path.stem}", mime))
    notes = []
    if reduced:
        notes.append(f"The {len(ordered)} sheets ({original / 1e6:.3g} MB) are shown as JPEG at {100 * scale:.0f}% of "
                     f"their size to keep this report near {budget / 1e6:.3g} MB; full size in <code>overlays/</code> "
                     "beside it.")
    if left_out:
        notes.append(f"{len(left_out)} sheet(s) are not embedded, batches with a failed or warned case having come "
                     f"first ({html.escape(', '.join(left_out[:20]))}{', ...' if len(left_out) > 20 else ''}); they "
                     "are in <code>overlays/</code> beside this report.")
    return "".join(f"<p class='note'>{note}</p>" for note in notes) + "".join(parts)


def _fitting_scale(sheets: list[Path], original: int, image_budget: int) -> float:
    """The scale at which the sheets, as JPEG, come to about ``image_budget`` bytes (at least
    ``MIN_OVERLAY_SCALE``), judged on up to a dozen sheets spread over the list (their JPEG bytes per PNG byte): a
    cohort's hundreds of sheets are encoded once, for the report, not once per trial scale."""
    sample = sheets[::max(1, len(sheets) // 12)][:12]
    sample_png = sum(p.stat().st_size for p in sample)
    scale = 1.0
    for _ in range(6):  # by the square root of the excess, less 5 %: a compressed image is not bytes per pixel
        predicted = sum(len(_scaled_jpeg(p.read_bytes(), scale)) for p in sample) * original / sample_png
        if predicted <= image_budget or scale <= MIN_OVERLAY_SCALE:
            break
        scale = max(scale * 0.95 * math.sqrt(image_budget / predicted), MIN_OVERLAY_SCALE)
    return scale


def _scaled_jpeg(png: bytes, scale: float) -> bytes:
    """A PNG sheet at ``scale`` of its size as JPEG (quality 85): a third of the PNG's bytes at 70 % of its size,
    where a scaled PNG would be larger than the original (the resampling adds colours) and take 100 times longer."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        smaller = image.convert("RGB")
        if scale != 1.0:
            smaller = smaller.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    smaller.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _performance_section(con, curves: dict[str, bytes]) -> str:
    metrics = _query(con, "SELECT model_id, validation, metric, value, ci_lower, ci_upper, n_cases FROM metrics "
                          "ORDER BY model_id, validation, metric", "metrics")
    models = _query(con, "SELECT model_id, status, n_cases, n_events, n_candidate_features FROM models "
                         "ORDER BY model_id", "models")
    return ("<h3>Models</h3>" + _table(models)
            + "<h3>Metrics</h3><p class='note'>95 % intervals of cross-validated metrics carry the training-set "
              "variability (bootstrap of the whole procedure, radflow.modelling.intervals); "
              "permutation_p_value reruns the whole nested CV on shuffled outcomes; delong_* compare a combined model "
              "with the clinical one on the same cases.</p>" + _table(metrics)
            + _img(curves["roc"], "ROC curves") + _img(curves["calibration"], "calibration curves")
            + _img(curves["decision"], "decision curves")
            + (_img(curves["survival"], "Kaplan-Meier curves of the risk groups") if "survival" in curves else ""))


def _model_cards(con) -> str:
    if not _has_table(con, "model_features"):
        return "<p class='note'>no models</p>"
    icc = ""
    if _has_table(con, "stability"):
        icc = ("LEFT JOIN (SELECT settings_id, roi, ibsi_code, aggregation, min(icc) AS icc, min(ci_low) AS icc_ci_low "
               "FROM stability GROUP BY ALL) s USING (settings_id, roi, ibsi_code, aggregation)")
    frame = con.execute(
        "SELECT model_id, feature_key, feature, ibsi_code, in_final_model, weight, weight_kind, selection_frequency"
        + (", icc, icc_ci_low" if icc else "") + f" FROM model_features {icc} "
        "ORDER BY model_id, in_final_model DESC, selection_frequency DESC, feature_key").df()
    parts = []
    for model_id, group in frame.groupby("model_id", sort=True):
        parts.append(f"<h3>{html.escape(model_id)}</h3>" + _table(group.drop(columns="model_id").head(40)))
    return "".join(parts) or "<p class='note'>no models</p>"


def _checklists(con) -> str:
    frame = _query(con, "SELECT standard, item, topic, status, points, max_points, evidence, user_action "
                        "FROM reporting ORDER BY standard, try_cast(regexp_extract(item, '^[0-9]+') AS INTEGER), "
                        "item", "reporting")
    if frame.empty:
        return "<p class='note'>no reporting table</p>"
    parts = []
    for standard, group in frame.groupby("standard", sort=True):
        total = ""
        if group["max_points"].notna().any():
            total = f" ({int(group['points'].sum())} of {int(group['max_points'].sum())} points evidenced by the run)"
        shown = group.drop(columns="standard").copy()
        shown["css"] = shown["status"].str.replace("not evidenced", "not")
        parts.append(f"<h3>{html.escape(standard)}{total}</h3>" + _table(shown, row_class="css"))
    return "".join(parts)


def report_html(con: duckdb.DuckDBPyConnection, overlays: list[Path], images: dict[str, Path]) -> str:
    """The whole report; ``images``: {"distributions": png, "stability": png} files written by other rules."""
    predictions = _query(con, "SELECT * FROM predictions", "predictions")
    curves = model_curves_png(predictions)
    survival = survival_curves_png(predictions)
    if survival is not None:
        curves["survival"] = survival

    def image_file(key: str, alt: str) -> str:
        path = images.get(key)
        return _img(Path(path).read_bytes(), alt) if path and Path(path).exists() else \
            f"<p class='note'>{html.escape(alt)}: not produced in this run</p>"

    sections = [
        ("summary", "Run at a glance", _summary(con)),
        ("qc", "Quality control", _qc_section(con, overlays)),
        ("features", "Feature distributions", image_file("distributions", "feature distributions")),
        ("stability", "Stability (ICC)", image_file("stability", "ICC per feature family")),
        ("performance", "Model performance", _performance_section(con, curves)),
        ("cards", "Model cards", _model_cards(con)),
        ("checklists", "Reporting checklists (RQS, TRIPOD+AI)", _checklists(con)),
    ]
    nav = "".join(f"<a href='#{key}'>{html.escape(title)}</a>" for key, title, _ in sections)
    body = "".join(f"<section id='{key}'><h2>{html.escape(title)}</h2>{content}</section>"
                   for key, title, content in sections)
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>radflow report</title>"
            f"<style>{STYLE}</style></head><body><h1>radflow report</h1><nav>{nav}</nav>{body}</body></html>\n")


def write_html_report(database: Path, out: Path, overlays: list[Path], images: dict[str, Path]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(database), read_only=True)
    try:
        text = report_html(con, sorted(overlays), images)
    finally:
        con.close()
    out.write_text(text, encoding="utf-8")
