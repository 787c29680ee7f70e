"""The stability report figure: ICC distribution per feature family and the fraction of features kept per family."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from radflow.features.registry import FAMILIES  # noqa: E402
from radflow.stability.selection import fraction_kept_by_family  # noqa: E402

MAX_PANELS = 8  # rows of the figure: (settings id, roi, method) combinations shown
ICC_AXIS = (-0.25, 1.02)


def _families(frame: pd.DataFrame) -> list[str]:
    present = set(frame["family"])
    return [f for f in FAMILIES if f in present] + sorted(present - set(FAMILIES))


def stability_png(stability: pd.DataFrame, stable: pd.DataFrame, min_icc_ci_low: float, out: Path) -> None:
    """One row per (settings id, roi, method): ICC point estimates (dots) and lower bounds (box) per family, and
    the fraction of the family's features in the stable set of that settings id and roi."""
    groups = list(stability.groupby(["settings_id", "roi", "method"], sort=True)) if len(stability) else []
    shown = groups[:MAX_PANELS]
    rows = max(len(shown), 1)
    fig, axes = plt.subplots(rows, 2, figsize=(12, 3.6 * rows), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 2]})
    if not shown:
        for ax in axes.flat:
            ax.set_axis_off()
        axes[0, 0].text(0.5, 0.5, "no repeated measurements: no stability results", ha="center", va="center")
    kept = fraction_kept_by_family(stability, stable) if len(stability) else pd.DataFrame()
    for (left, right), ((settings_id, roi, method), group) in zip(axes, shown):
        families = _families(group)
        positions = np.arange(len(families))
        lower = [group.loc[group.family == f, "ci_low"].dropna().clip(*ICC_AXIS).to_numpy() for f in families]
        point = [group.loc[group.family == f, "icc"].dropna().clip(*ICC_AXIS).to_numpy() for f in families]
        left.boxplot(lower, positions=positions, widths=0.5, showfliers=False)
        rng = np.random.default_rng(0)  # fixed jitter: identical bytes on rerun
        for x, values in zip(positions, point):
            left.scatter(x + rng.uniform(-0.18, 0.18, len(values)), values, s=8, alpha=0.6, color="tab:blue")
        left.axhline(min_icc_ci_low, color="tab:red", lw=1, ls="--")
        left.set_xticks(positions, families, rotation=35, ha="right", fontsize=8)
        left.set_ylim(*ICC_AXIS)
        form = group["icc_form"].iloc[0]
        left.set_ylabel(f"{form}", fontsize=8)
        left.set_title(f"{method} ({roi}, settings {settings_id}): ICC (dots) and lower 95% bound (boxes); "
                       f"n = {int(group['n'].max())} cases", fontsize=8)

        mine = kept[(kept.settings_id == settings_id) & (kept.roi == roi)].set_index("family").reindex(families)
        fractions = mine["fraction_kept"].fillna(0).to_numpy()
        right.barh(positions, fractions, color="tab:green")
        for y, (k, a) in enumerate(zip(mine["kept"].fillna(0), mine["assessed"].fillna(0))):
            right.text(min(fractions[y] + 0.02, 0.85), y, f"{int(k)}/{int(a)}", va="center", fontsize=7)
        right.set_yticks(positions, families, fontsize=8)
        right.invert_yaxis()
        right.set_xlim(0, 1)
        right.set_xlabel(f"fraction kept (lower ICC bound >= {min_icc_ci_low:g})", fontsize=8)
        right.set_title(f"stable set: {int(mine['kept'].fillna(0).sum())} of {int(mine['assessed'].fillna(0).sum())}"
                        " features", fontsize=8)
    if len(groups) > len(shown):
        fig.suptitle(f"first {len(shown)} of {len(groups)} settings/roi/method combinations", fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110, metadata={"Software": None})
    plt.close(fig)


def write_stability_figure(stability_path: Path, stable_path: Path, min_icc_ci_low: float, out: Path) -> None:
    stability_png(pd.read_parquet(stability_path), pd.read_parquet(stable_path), min_icc_ci_low, out)
