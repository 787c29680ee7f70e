"""The Python entry point for one image and mask: ``radflow.extract`` (what ``radflow extract`` computes, as a
pandas DataFrame, for notebooks and scripts).

Images and masks may be paths (DICOM series folder, NIfTI, NRRD; masks also RTSTRUCT or SEG with ``roi``),
SimpleITK images, or numpy arrays. A numpy array is indexed ``[z, y, x]`` (as ``SimpleITK.GetArrayFromImage``
returns it) and needs ``spacing`` in mm in ``(x, y, z)`` order (SimpleITK's order); a numpy mask takes the image's
geometry.
"""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Sequence, Union

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
    import SimpleITK as sitk

    from radflow.settings import Settings

    ImageLike = Union[str, Path, sitk.Image, np.ndarray]


def _as_image(image: "ImageLike", spacing: Sequence[float] | None, origin: Sequence[float] | None,
              referenced_series: Sequence[str] = ()) -> "sitk.Image":
    import numpy as np
    import SimpleITK as sitk

    from radflow.io import read_image, require_volume

    if isinstance(image, sitk.Image):
        require_volume(image, "image")
        return image
    if isinstance(image, (str, Path)):
        return read_image(Path(image), referenced_series)
    if isinstance(image, np.ndarray):
        if image.ndim != 3:
            raise ValueError(f"a numpy image must be 3D [z, y, x], got shape {image.shape}")
        if spacing is None:
            raise ValueError("a numpy image needs spacing=(x, y, z) in mm")
        voxel = tuple(float(s) for s in spacing)
        if len(voxel) != 3 or not all(s > 0 and np.isfinite(s) for s in voxel):
            raise ValueError(f"spacing must be three positive voxel sizes (x, y, z) in mm, got {tuple(spacing)}")
        out = sitk.GetImageFromArray(np.asarray(image, dtype=np.float64))
        out.SetSpacing(voxel)
        if origin is not None:
            out.SetOrigin(tuple(float(o) for o in origin))
        return out
    raise TypeError(f"image must be a path, a SimpleITK image or a numpy array, not {type(image).__name__}")


def _as_mask(mask: "ImageLike", reference: "sitk.Image", roi: str | int | None) -> "sitk.Image":
    import numpy as np
    import SimpleITK as sitk

    from radflow.io import (InputError, label_image, labelled, on_image_grid, read_mask, require_one_label,
                            require_volume, selected, slicer_roi)

    if isinstance(mask, (str, Path)):
        return read_mask(Path(mask), reference, roi=None if roi is None else str(roi))
    if isinstance(mask, np.ndarray):
        if mask.shape != sitk.GetArrayViewFromImage(reference).shape:
            raise InputError(f"mask shape {mask.shape} differs from image shape "
                             f"{sitk.GetArrayViewFromImage(reference).shape} ([z, y, x])")
        if roi is None:
            require_one_label(np.asarray(mask), "array")
        return label_image(selected(np.asarray(mask), None if roi is None else str(roi)), reference)
    if isinstance(mask, sitk.Image):
        if mask.GetDimension() == 3:  # a 3D Slicer segmentation: its segment's layer and label value
            mask, roi = slicer_roi(mask, None if roi is None else str(roi), "image")
        require_volume(mask, "mask")
        mask = on_image_grid(mask, reference, "image")
        if roi is None:
            require_one_label(sitk.GetArrayViewFromImage(mask), "image")
        return labelled(mask, None if roi is None else str(roi))
    raise TypeError(f"mask must be a path, a SimpleITK image or a numpy array, not {type(mask).__name__}")


def _as_settings(settings: "Settings | str | Path | dict | None") -> "Settings":
    from radflow.settings import Settings

    if settings is None:
        return Settings.from_dict({})
    if isinstance(settings, Settings):
        return settings
    if isinstance(settings, dict):
        return Settings.from_dict(settings)
    return Settings.from_yaml(settings)


def extract(image: "ImageLike", mask: "ImageLike", settings: "Settings | str | Path | dict | None" = None, *,
            roi: str | int | None = None, spacing: Sequence[float] | None = None,
            origin: Sequence[float] | None = None, mask_image: str | Path | None = None) -> "pd.DataFrame":
    """IBSI features of one image and ROI, one row per feature and aggregation.

    ``settings``: a ``Settings``, a settings YAML (radflow or PyRadiomics parameter file), a dict in IBSI terms,
    or None for radflow's defaults. ``roi``: RTSTRUCT ROI name / SEG segment label / 3D Slicer segment name /
    label value of a label mask (default: every non-zero voxel, when they carry one label; several labels need one
    chosen; a mask of fractions in [0, 1], a probability map, is its voxels >= 0.5, with a
    ``io.FractionalMaskWarning``). CT settings (radflow's default) on an image of unknown modality without any air
    (an MR or PET NIfTI) give an ``extraction.CtWithoutAirWarning``. A mask image must
    hold the image's voxels, possibly in another orientation or as a box around the ROI (``io.on_image_grid``);
    ``InputError`` says what is wrong otherwise. ``mask_image``: the DICOM series a DICOM or label mask was drawn on
    when it is not ``image`` (a PET/CT's CT, for its PET): the mask is read there and resampled onto the image
    (same frame of reference; ``imaging.mask_transfer``). Returns the columns of ``radflow extract``'s CSV (``family,
    feature, ibsi_code, aggregation, value, reason``; ``reason`` says why a value is NaN) with the same values, in
    the same order.
    """
    import pandas as pd

    import SimpleITK as sitk

    from radflow.extraction import CSV_COLUMNS, CtWithoutAirWarning, ct_without_air, extract_columns, settings_mismatch
    from radflow.io import image_modality, mask_references

    references = mask_references(Path(mask)) if isinstance(mask, (str, Path)) and mask_image is None else ()
    reference = _as_image(image, spacing, origin, references)
    chosen = _as_settings(settings)
    source = str(image) if isinstance(image, (str, Path)) else "the image"
    mismatch = settings_mismatch(chosen, image_modality(reference), source)
    if mismatch:
        raise ValueError(mismatch)
    no_air = ct_without_air(chosen, image_modality(reference), sitk.GetArrayViewFromImage(reference), source)
    if no_air:
        warnings.warn(CtWithoutAirWarning(no_air), stacklevel=2)
    if mask_image is not None:
        if not isinstance(mask, (str, Path)):
            raise TypeError("mask_image needs the mask as a path (the mask is read on that series first)")
        from radflow.io import read_mask

        roi_mask = read_mask(Path(mask), reference, roi=None if roi is None else str(roi), drawn_on=Path(mask_image))
    else:
        roi_mask = _as_mask(mask, reference, roi)
    table = extract_columns(reference, roi_mask, chosen)
    frame = pd.DataFrame({name: table[name] for name in CSV_COLUMNS})
    frame["value"] = frame["value"].astype("float64")
    return frame
