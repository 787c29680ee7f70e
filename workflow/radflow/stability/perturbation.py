"""Image and mask perturbations for feature robustness without a retest (Zwanenburg et al., Sci Rep 2019; 9: 614).

Each perturbation is one random draw of a chain of operations, applied in the order of the paper:

1. **Noise addition** (N): Gaussian noise with the standard deviation estimated from the image itself
   (:func:`estimate_noise_sd`), so the perturbed image has about twice the noise variance of the original.
2. **Rotation** (R) in the axial plane about the ROI centroid by an angle uniform in
   ``[-rotation_deg, rotation_deg]``, and **sub-voxel translation** (T) by a fraction uniform in [0, 1) of the voxel
   spacing along each axis, done together as one affine resampling (trilinear image; mask interpolated linearly and
   thresholded at 0.5), so the image is interpolated once.
3. **Volume adaptation** (V): the mask grown or shrunk by a fraction uniform in ``[-volume_change, volume_change]``
   of its volume, along its Euclidean signed distance map (:func:`adapt_volume`).
4. **Contour randomisation** (C): SLIC supervoxels of the image around the ROI; each supervoxel joins the new mask
   with probability equal to its overlap with the mask (always when >= 0.9, never when < 0.2, and the most
   overlapping one always), followed by a binary closing (:func:`randomise_contour`).

Arrays are (z, y, x) with spacing (z, y, x) in mm, as everywhere in radflow. Every random number comes from the
``numpy.random.Generator`` the caller passes, so a fixed seed gives the same perturbations on every machine.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

# Donoho's robust noise estimate: median |w| / 0.6745 for Gaussian noise, 0.6745 the normal upper quartile.
MAD_TO_SD = 0.6744897501960817
# Supervoxel size as in MIRP (Zwanenburg's implementation): at least 20 voxels and at least 500 mm^3.
SUPERVOXEL_MIN_VOXELS = 20
SUPERVOXEL_MIN_MM3 = 500.0
ALWAYS_INCLUDED_OVERLAP = 0.9
NEVER_INCLUDED_OVERLAP = 0.2
SUPERVOXEL_MARGIN_MM = 10.0
# SLIC compactness for intensities scaled to [0, 1]. MIRP uses 0.05; on the demo's small (2-8 cm^3) lesions that
# gives a Dice of 0.83-0.90 with the original mask, 0.5 gives supervoxels so faithful to the edge that the contour
# hardly varies (Dice between draws 0.94-1), 0.1 gives Dice 0.86-0.92 with the mask and 0.90-1 between draws: about
# the disagreement between observers of a lung lesion.
SUPERVOXEL_COMPACTNESS = 0.1


@dataclass(frozen=True)
class PerturbationSettings:
    """What the perturbation chain does (config ``stability.perturbation``); 0 / False disables a step."""

    n_perturbations: int = 10
    rotation_deg: float = 15.0
    translation: bool = True
    noise: bool = True
    volume_change: float = 0.2
    contour_randomisation: bool = True

    @classmethod
    def from_dict(cls, doc: dict | None) -> "PerturbationSettings":
        doc = dict(doc or {})
        known = set(cls.__dataclass_fields__)
        unknown = set(doc) - known - {"icc_form"}  # icc_form is read by the statistics, not the perturbation
        if unknown:
            raise ValueError(f"unknown perturbation settings {sorted(unknown)}; known: {sorted(known)}")
        settings = cls(**{k: v for k, v in doc.items() if k in known})
        if settings.n_perturbations < 2:
            raise ValueError("n_perturbations must be at least 2 (an ICC needs two measurements per subject)")
        if not 0 <= settings.volume_change < 1:
            raise ValueError("volume_change must be in [0, 1)")
        return settings


@dataclass(frozen=True)
class Perturbation:
    """One draw of the chain: the parameters that decide the perturbed image and mask."""

    label: str
    rotation_deg: float
    translation_vox: tuple[float, float, float]  # (z, y, x) fractions of a voxel
    noise: bool
    volume_change: float
    contour_randomisation: bool

    def describe(self) -> dict:
        return asdict(self)


def draw(rng: np.random.Generator, settings: PerturbationSettings, label: str) -> Perturbation:
    """Random parameters of one perturbation (the same number of draws whatever is enabled, so enabling one step
    does not change the others' parameters)."""
    angle = float(rng.uniform(-1.0, 1.0)) * settings.rotation_deg
    t0, t1, t2 = (float(v) for v in rng.uniform(0.0, 1.0, size=3))
    shift = (t0, t1, t2)
    change = float(rng.uniform(-1.0, 1.0)) * settings.volume_change
    return Perturbation(
        label=label,
        rotation_deg=angle,
        translation_vox=shift if settings.translation else (0.0, 0.0, 0.0),
        noise=settings.noise,
        volume_change=change,
        contour_randomisation=settings.contour_randomisation,
    )


# ------------------------------------------------------------------------------------------------ noise

def estimate_noise_sd(image: np.ndarray) -> float:
    """Noise standard deviation from the finest diagonal Haar wavelet coefficients of each axial slice.

    ``HH = (a - b - c + d) / 2`` over 2x2 blocks is orthonormal, so white noise of SD sigma gives HH ~ N(0, sigma^2)
    while smooth structure cancels; ``sigma = median(|HH|) / 0.6745`` (Donoho & Johnstone 1994, as Chang et al.,
    IEEE TIP 2000 use it). Blocks with four equal values are left out: they come from clipped or padded regions
    (air at the scanner's lower limit, zero padding) that carry no noise and would pull the median to zero.
    """
    z, y, x = image.shape
    blocks = np.asarray(image[:, : y - y % 2, : x - x % 2], dtype=np.float64)
    a, b = blocks[:, 0::2, 0::2], blocks[:, 0::2, 1::2]
    c, d = blocks[:, 1::2, 0::2], blocks[:, 1::2, 1::2]
    flat = (a == b) & (a == c) & (a == d)
    hh = np.abs(a - b - c + d)[~flat] / 2
    if hh.size == 0:
        return 0.0
    return float(np.median(hh) / MAD_TO_SD)


def add_noise(image: np.ndarray, sd: float, rng: np.random.Generator) -> np.ndarray:
    return image + sd * rng.standard_normal(image.shape)


# ------------------------------------------------------------------------------------------------ geometry

def centroid_mm(mask: np.ndarray, spacing: tuple[float, float, float]) -> np.ndarray:
    return np.array([idx.mean() for idx in np.nonzero(mask)]) * np.asarray(spacing)


def rotate_translate(
    image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float], angle_deg: float,
    translation_vox: tuple[float, float, float],
) -> tuple[np.ndarray, np.ndarray]:
    """The object rotated in-plane about the mask centroid and moved by ``translation_vox``: one affine resampling.

    Output voxel ``o`` (index) at ``p = S o`` (mm) takes the input at ``S^-1 (R^-1 (p - c - t) + c)``, with S the
    spacing, c the centroid and t the translation in mm. Image: trilinear, edge values outside; mask: trilinear
    partial-volume fraction thresholded at 0.5.
    """
    if (angle_deg == 0.0 and not any(translation_vox)) or not mask.any():
        return image.astype(np.float64), mask.astype(bool)
    s = np.asarray(spacing, dtype=np.float64)
    theta = math.radians(angle_deg)
    inverse_rotation = np.array([[1.0, 0.0, 0.0],
                                 [0.0, math.cos(theta), math.sin(theta)],
                                 [0.0, -math.sin(theta), math.cos(theta)]])
    c = centroid_mm(mask, spacing)
    t = np.asarray(translation_vox, dtype=np.float64) * s
    matrix = inverse_rotation * s[None, :] / s[:, None]  # S^-1 R^-1 S
    offset = (c - inverse_rotation @ (c + t)) / s
    moved = ndimage.affine_transform(np.asarray(image, dtype=np.float64), matrix, offset, order=1, mode="nearest")
    fraction = ndimage.affine_transform(mask.astype(np.float64), matrix, offset, order=1, mode="constant", cval=0.0)
    return moved, fraction >= 0.5


def _box(mask: np.ndarray, margin_vox) -> tuple[slice, ...]:
    where = np.nonzero(mask)
    return tuple(slice(max(int(i.min()) - m, 0), min(int(i.max()) + m + 1, n))
                 for i, m, n in zip(where, margin_vox, mask.shape))


def adapt_volume(mask: np.ndarray, spacing: tuple[float, float, float], fraction: float) -> np.ndarray:
    """The mask grown (``fraction`` > 0) or shrunk (< 0) by ``fraction`` of its volume.

    Voxels are ranked by their Euclidean signed distance to the mask surface (negative inside, mm) and the new mask
    is the ``round((1 + fraction) V)`` lowest-ranked voxels, so it follows the shape's iso-distance surfaces and has
    exactly the target volume. On a voxel grid whole shells share one distance; within a shell the voxels with more
    of the mask around them (a Gaussian-smoothed mask, one voxel wide) come first, so concavities fill before
    convexities grow, and the order never depends on the array layout.
    """
    mask = mask.astype(bool)
    volume = int(mask.sum())
    target = max(int(round((1.0 + fraction) * volume)), 1)
    if fraction == 0.0 or volume == 0 or target == volume:
        return mask.copy()
    # Growth stays within a margin of the box: a sphere grown by 100 % gains 26 % in radius.
    margin = [int(math.ceil(0.3 * (i.max() - i.min() + 1))) + 2 for i in np.nonzero(mask)]
    box = _box(mask, margin)
    local = mask[box]
    inside = ndimage.distance_transform_edt(local, sampling=spacing)
    outside = ndimage.distance_transform_edt(~local, sampling=spacing)
    signed = np.where(local, -inside, outside).ravel()
    support = ndimage.gaussian_filter(local.astype(np.float64), 1.0, mode="constant").ravel()
    order = np.lexsort((np.arange(signed.size), -support, signed))  # last key sorts first
    chosen = np.zeros(signed.size, dtype=bool)
    chosen[order[:min(target, signed.size)]] = True
    result = np.zeros_like(mask)
    result[box] = chosen.reshape(local.shape)
    return result


def randomise_contour(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float],
                      rng: np.random.Generator) -> np.ndarray:
    """Supervoxel-based contour randomisation (Zwanenburg et al. 2019), on the image around the ROI.

    SLIC supervoxels (scikit-image; spacing-aware, compactness 0.1, Gaussian pre-smoothing of the smallest voxel
    spacing) of the image clipped to the ROI's intensity range widened by 10 % and scaled to [0, 1], each of at
    least 20 voxels and 500 mm^3. A supervoxel joins the new mask with probability equal to the fraction of it
    inside the mask (>= 0.9: always; < 0.2: never; the most overlapping one: always); a binary closing fills
    the gaps between supervoxels.
    """
    from skimage.segmentation import slic

    mask = mask.astype(bool)
    if not mask.any():
        return mask.copy()
    margin = [int(math.ceil(SUPERVOXEL_MARGIN_MM / s)) for s in spacing]
    box = _box(mask, margin)
    local_image = np.asarray(image[box], dtype=np.float64)
    local_mask = mask[box]
    low, high = float(local_image[local_mask].min()), float(local_image[local_mask].max())
    widen = 0.1 * (high - low) if high > low else 1.0
    low, high = low - widen, high + widen
    scaled = (np.clip(local_image, low, high) - low) / (high - low)
    voxel_mm3 = float(np.prod(spacing))
    supervoxel_voxels = max(SUPERVOXEL_MIN_VOXELS, SUPERVOXEL_MIN_MM3 / voxel_mm3)
    n_segments = max(2, int(local_image.size / supervoxel_voxels))
    labels = slic(scaled, n_segments=n_segments, compactness=SUPERVOXEL_COMPACTNESS, sigma=float(min(spacing)),
                  spacing=np.asarray(spacing, dtype=np.float64), channel_axis=None, start_label=1,
                  enforce_connectivity=True)
    sizes = np.bincount(labels.ravel())
    inside = np.bincount(labels[local_mask], minlength=len(sizes))
    with np.errstate(invalid="ignore", divide="ignore"):
        overlap = np.where(sizes > 0, inside / np.maximum(sizes, 1), 0.0)
    probability = np.where(overlap >= ALWAYS_INCLUDED_OVERLAP, 1.0, overlap)
    probability[overlap < NEVER_INCLUDED_OVERLAP] = 0.0
    probability[int(np.argmax(overlap))] = 1.0
    included = rng.uniform(size=len(probability)) < probability
    local_result = ndimage.binary_closing(included[labels], structure=ndimage.generate_binary_structure(3, 1))
    result = np.zeros_like(mask)
    result[box] = local_result
    return result


# ------------------------------------------------------------------------------------------------ the chain

def perturb(image: np.ndarray, mask: np.ndarray, spacing: tuple[float, float, float], p: Perturbation,
            rng: np.random.Generator, noise_sd: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The perturbed (image, mask) of one draw ``p``. ``noise_sd``: the original image's noise level (estimated
    from ``image`` when not given; pass it when ``image`` is a crop of a larger image)."""
    image = np.asarray(image, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    if p.noise:
        sd = estimate_noise_sd(image) if noise_sd is None else noise_sd
        image = add_noise(image, sd, rng)
    image, mask = rotate_translate(image, mask, spacing, p.rotation_deg, p.translation_vox)
    if p.volume_change and mask.any():
        mask = adapt_volume(mask, spacing, p.volume_change)
    if p.contour_randomisation and mask.any():
        mask = randomise_contour(image, mask, spacing, rng)
    return image, mask


def roi_window(mask: np.ndarray, spacing: tuple[float, float, float], margin_mm: float) -> tuple[slice, ...]:
    """A box around the ROI that any in-plane rotation about its centroid keeps the ROI (plus ``margin_mm``) in.

    In-plane the box is a square around the centroid with half-side the largest in-plane distance of an ROI voxel
    from the centroid plus the margin; along z the ROI's extent plus the margin. Perturbing this window instead of
    the whole image makes the cost independent of the field of view.
    """
    s = np.asarray(spacing, dtype=np.float64)
    idx = np.nonzero(mask)
    c = np.array([i.mean() for i in idx])
    radius_mm = float(np.sqrt(((idx[1] - c[1]) * s[1]) ** 2 + ((idx[2] - c[2]) * s[2]) ** 2).max())
    half = [None, radius_mm + margin_mm, radius_mm + margin_mm]
    window = [slice(max(int(idx[0].min()) - int(math.ceil(margin_mm / s[0])), 0),
                    min(int(idx[0].max()) + int(math.ceil(margin_mm / s[0])) + 1, mask.shape[0]))]
    for axis in (1, 2):
        reach = int(math.ceil(half[axis] / s[axis])) + 1
        centre = int(round(c[axis]))
        window.append(slice(max(centre - reach, 0), min(centre + reach + 1, mask.shape[axis])))
    return tuple(window)
