"""Mask-on-image overlays: one contact sheet per batch so a person sees at a glance what was segmented.

One row per case x scan x ROI: three slices through the ROI (its largest cross-section and the slices a quarter of
the ROI's extent above and below), cropped around the ROI, the mask contour drawn on the image. Scans or ROIs that
failed QC get a row saying why instead of pictures. The picture holds pseudonyms only (case id, scan, ROI, codes).
"""
from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

#: Display windows by modality (lower, upper) in modality units; others use the 1st-99th percentile of the crop.
WINDOWS = {"CT": (-1000.0, 400.0)}
PANELS = 3
CELL_INCHES = 1.7
NOTE_ROW_RATIO = 0.3  # height of a row without pictures, relative to a picture row
NOTE_WIDTH = 90  # characters per line of a row's note


@dataclass(frozen=True)
class Panel:
    """One picture: a cropped image slice, the mask on it, and the slice index."""

    image: np.ndarray  # (rows, columns)
    mask: np.ndarray  # (rows, columns) bool
    k: int


@dataclass
class OverlayRow:
    """One row of the contact sheet: its panels (pictures), or only the ``note`` when there are none."""

    title: str  # e.g. "case-0123abcd  test  GTV"
    status: str  # pass | warn | fail
    note: str = ""
    panels: list[Panel] = field(default_factory=list)
    window: tuple[float, float] = (0.0, 1.0)
    aspect: float = 1.0  # displayed height / width of a pixel (row spacing / column spacing)


def overlay_row(title: str, status: str, note: str, image: np.ndarray, mask: np.ndarray,
                spacing_zyx: tuple[float, float, float], modality: str) -> OverlayRow:
    """The row of one ROI, keeping only the few cropped slices it shows (not the volumes)."""
    slices = chosen_slices(mask)
    if not slices:
        return OverlayRow(title, status, note or "empty mask")
    rows, cols = crop_box(mask)
    panels = [Panel(np.array(image[k, rows, cols], dtype=np.float32), np.asarray(mask[k, rows, cols]) != 0, k)
              for k in slices]
    return OverlayRow(title, status, note, panels, window(np.stack([p.image for p in panels]), modality),
                      spacing_zyx[1] / spacing_zyx[2])


def chosen_slices(mask: np.ndarray, n: int = PANELS) -> list[int]:
    """The slice with the largest mask area first, then slices a quarter of the ROI extent below and above it."""
    area = mask.reshape(mask.shape[0], -1).sum(axis=1)
    occupied = np.flatnonzero(area)
    if occupied.size == 0:
        return []
    largest = int(np.argmax(area))
    step = max(int(round((occupied[-1] - occupied[0]) / 4)), 1)
    picks = [largest]
    for candidate in (largest - step, largest + step, occupied[0], occupied[-1]):
        candidate = int(np.clip(candidate, occupied[0], occupied[-1]))
        if candidate not in picks and len(picks) < n:
            picks.append(candidate)
    return sorted(picks)


def crop_box(mask: np.ndarray, margin_fraction: float = 0.6, min_margin: int = 12) -> tuple[slice, slice]:
    """In-plane (rows, columns) window around the ROI with a margin, clipped to the image."""
    rows = np.flatnonzero(mask.any(axis=(0, 2)))
    cols = np.flatnonzero(mask.any(axis=(0, 1)))
    boxes = []
    for idx, size in ((rows, mask.shape[1]), (cols, mask.shape[2])):
        extent = idx[-1] - idx[0] + 1
        margin = max(int(extent * margin_fraction), min_margin)
        boxes.append(slice(max(idx[0] - margin, 0), min(idx[-1] + 1 + margin, size)))
    return boxes[0], boxes[1]


def window(values: np.ndarray, modality: str) -> tuple[float, float]:
    if modality in WINDOWS:
        return WINDOWS[modality]
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = np.percentile(finite, [1, 99])
    return float(low), float(high if high > low else low + 1)


STATUS_COLOURS = {"pass": "#1a7f37", "warn": "#b35900", "fail": "#c62828"}


def draw_row(axes, row: OverlayRow) -> None:
    colour = STATUS_COLOURS.get(row.status, "black")
    for ax in axes:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0].set_title(row.title, fontsize=7, loc="left", color=colour)
    if not row.panels:  # one text line across the row instead of pictures
        for ax in axes[1:]:
            ax.set_visible(False)
        axes[0].set_axis_off()
        text = textwrap.fill(f"{row.status.upper()}: {row.note}".replace("\n", " "), NOTE_WIDTH, max_lines=3,
                             placeholder=" ...")
        axes[0].text(0.0, 0.9, text, fontsize=6.5, color=colour, transform=axes[0].transAxes, va="top", ha="left",
                     clip_on=False)
        return
    low, high = row.window
    for ax, panel in zip(axes, row.panels):
        ax.imshow(panel.image, cmap="gray", vmin=low, vmax=high, aspect=row.aspect, interpolation="nearest")
        if panel.mask.any():
            ax.contour(panel.mask.astype(float), levels=[0.5], colors=["#ff3030"], linewidths=0.9)
        ax.text(0.03, 0.04, f"slice {panel.k}", fontsize=6, color="yellow", transform=ax.transAxes)
    for ax in axes[len(row.panels):]:
        ax.set_visible(False)
    if row.note:
        axes[-1].set_visible(True)
        axes[-1].text(0.98, 0.96, row.note, fontsize=5.5, color=colour, ha="right", va="top",
                      transform=axes[-1].transAxes, bbox={"facecolor": "white", "alpha": 0.7, "pad": 1, "lw": 0})


def contact_sheet(rows: list[OverlayRow], out: Path, title: str = "") -> None:
    """Write the contact sheet PNG (no timestamp metadata, so reruns give the same bytes)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    n = max(len(rows), 1)
    # rows without pictures are a line of text: give them a third of a picture row
    ratios = [1.0 if row.panels else NOTE_ROW_RATIO for row in rows] or [1.0]
    fig, axes = plt.subplots(n, PANELS, figsize=(PANELS * CELL_INCHES, sum(ratios) * (CELL_INCHES + 0.25) + 0.4),
                             squeeze=False, gridspec_kw={"height_ratios": ratios})
    for ax_row, row in zip(axes, rows):
        draw_row(ax_row, row)
    if not rows:
        for ax in axes[0]:
            ax.set_visible(False)
        axes[0][0].set_visible(True)
        axes[0][0].text(0.5, 0.5, "no cases", ha="center")
    height = fig.get_figheight()
    if title:
        fig.suptitle(title, fontsize=8, y=1 - 0.12 / height)
    # fixed margins (tight_layout gives up on long notes): room for each row's title above its panels
    fig.subplots_adjust(left=0.02, right=0.98, bottom=0.08 / height, top=1 - 0.5 / height, wspace=0.04,
                        hspace=0.25 / (CELL_INCHES * sum(ratios) / n))
    fig.savefig(out, dpi=100, metadata={"Software": None})
    plt.close(fig)
