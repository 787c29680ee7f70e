"""ROC and calibration figures of the binary models' out-of-fold (and external) predictions, for the report."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

N_CALIBRATION_BINS = 5


def unit_square_axes(ax, kind: str) -> None:
    """Diagonal, limits, labels and title of a ROC (``kind`` 'roc') or calibration plot of out-of-fold predictions."""
    ax.plot([0, 1], [0, 1], ":", color="grey", lw=1)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    if kind == "roc":
        ax.set_xlabel("1 - specificity")
        ax.set_ylabel("sensitivity")
        ax.set_title("ROC of out-of-fold predictions (repeats pooled)")
    else:
        ax.set_xlabel("mean predicted probability (quantile bins)")
        ax.set_ylabel("observed fraction with outcome")
        ax.set_title("Calibration of out-of-fold predictions")


def roc_points(y: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(false positive rate, true positive rate) of "score >= t" for every distinct t, from (0, 0) to (1, 1)."""
    y = np.asarray(y).astype(bool)
    thresholds = np.unique(score)[::-1]
    tpr = [0.0] + [float((score[y] >= t).mean()) for t in thresholds]
    fpr = [0.0] + [float((score[~y] >= t).mean()) for t in thresholds]
    return np.asarray(fpr), np.asarray(tpr)


def calibration_bins(y: np.ndarray, p: np.ndarray, n_bins: int = N_CALIBRATION_BINS) -> tuple[np.ndarray, np.ndarray]:
    """(mean predicted, observed fraction) in quantile bins of the predicted probability."""
    order = np.argsort(p, kind="stable")
    groups = [g for g in np.array_split(order, min(n_bins, len(p))) if g.size]
    return np.array([p[g].mean() for g in groups]), np.array([np.asarray(y)[g].mean() for g in groups])


def _placeholder(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", wrap=True)
    ax.set_axis_off()


def _label(metrics: pd.DataFrame, model_id: str, validation: str, metric: str) -> str:
    row = metrics[(metrics["model_id"] == model_id) & (metrics["validation"] == validation)
                  & (metrics["metric"] == metric)]
    if row.empty or not np.isfinite(row["value"].iloc[0]):
        return ""
    r = row.iloc[0]
    return f"{metric.replace('_', ' ')} {r['value']:.2f} [{r['ci_lower']:.2f}, {r['ci_upper']:.2f}]"


def _curves(predictions: pd.DataFrame):
    """(model_id, validation, y, p) for every binary model and validation kind; repeats are pooled."""
    binary = predictions[predictions["probability"].notna()]
    for (model_id, validation), group in binary.groupby(["model_id", "validation"], sort=True):
        yield model_id, validation, group["outcome"].to_numpy().astype(int), group["probability"].to_numpy()


def write_model_figures(predictions: pd.DataFrame, metrics: pd.DataFrame, roc_png: Path,
                        calibration_png: Path) -> None:
    """Figures from the predictions and metrics tables (each prediction row carries the outcome it was scored
    against)."""
    curves = list(_curves(predictions))
    for path, kind in ((roc_png, "roc"), (calibration_png, "calibration")):
        fig, ax = plt.subplots(figsize=(6.2, 5.4))
        if not curves:
            _placeholder(ax, "No binary model was fitted (see the models table's status column).")
        for model_id, validation, y, p in curves:
            style = "-" if validation == "cv" else "--"
            name = f"{model_id} ({validation})"
            if kind == "roc":
                fpr, tpr = roc_points(y, p)
                ax.step(fpr, tpr, style, where="post", label=f"{name}  {_label(metrics, model_id, validation, 'auc')}")
            else:
                predicted, observed = calibration_bins(y, p)
                slope = _label(metrics, model_id, validation, "calibration_slope")
                ax.plot(predicted, observed, style, marker="o", label=f"{name}  {slope}")
        if curves:
            unit_square_axes(ax, kind)
            ax.set_aspect("equal")
            ax.legend(fontsize=6.5, loc="lower right" if kind == "roc" else "upper left")
        fig.tight_layout()
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=110, metadata={"Software": None})  # no version stamp: identical bytes on rerun
        plt.close(fig)
