"""DICOM input and output for radflow.

Reading side (one domain concept per module):
- ``files``: which files are DICOM (with or without the Part 10 preamble) and reading one;
- ``discovery``: walk any folder tree and inventory image series and mask objects (RTSTRUCT, SEG), linked together;
- ``series``: one image series -> a float32 SimpleITK volume with checked geometry;
- ``rtstruct``: RTSTRUCT ROI names and rasterisation onto an image grid;
- ``seg``: DICOM SEG segment labels and segments on an image grid;
- ``deid``: pseudonymisation primitives (keyed HMAC pseudonyms and UIDs) and the basic-profile tag list.

Submodules are imported on use so that ``import radflow.dicom`` stays cheap (highdicom and numba load slowly).
"""
