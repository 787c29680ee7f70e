"""radflow: reproducible radiomics from DICOM to DuckDB and RDF.

The Python API (imported on first use, so that ``import radflow`` stays cheap for the command line):

- ``radflow.extract(image, mask, settings)`` -> pandas DataFrame of IBSI features (``radflow.api``);
- ``radflow.Settings.from_yaml(path)`` / ``.from_pyradiomics(path)`` (``radflow.settings``);
- ``radflow.open_results(path)`` -> read-only DuckDB connection; ``radflow.wide(con, settings_id, scan)`` -> one row
  per case and ROI (``radflow.results``; ``radflow.results.TABLES`` describes the tables).
"""
from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (a fresh `radflow` process pays for it)

__version__ = "0.1.0"
__all__ = ["extract", "Settings", "open_results", "wide", "__version__"]

_LAZY = {"extract": "radflow.api", "Settings": "radflow.settings", "open_results": "radflow.results",
         "wide": "radflow.results"}

if TYPE_CHECKING:
    from typing import Any

    from radflow.api import extract
    from radflow.results import open_results, wide
    from radflow.settings import Settings


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'radflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
