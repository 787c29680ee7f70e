"""Image processing before features: resampling, re-segmentation, normalisation, discretisation."""
