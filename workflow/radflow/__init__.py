"""radflow: reproducible radiomics from DICOM to DuckDB and RDF."""

__version__ = "0.1.0"
