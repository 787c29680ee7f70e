"""Namespaces and the RO classes radflow uses for settings (IRIs only; the RO file itself is not redistributed)."""
from rdflib import Namespace
from rdflib.namespace import DCTERMS, PROV, RDF, RDFS, XSD

RO = Namespace("http://www.radiomics.org/RO/")
ROO = Namespace("http://www.cancerdata.org/roo/")
SCHEMA = Namespace("http://schema.org/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
NCIT = Namespace("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#")

HAS_VALUE = ROO.P100042  # RO has no datatype property for values; FAIR radiomics data use ROO's has_value
FEATURE_PARAMETER_SPACE = RO.CINW
HAS_PARAMETER = RO.P00009
HAS_FEATURE_SPACE = RO.P00578
ROI_MASK = RO.OH8W
CALCULATION_RUN = RO.GFJV
FIXED_BIN_SIZE = RO.Q3RU
FIXED_BIN_NUMBER = RO.K15C
INTERPOLATION = RO.VTM2
INTERPOLATORS = {"nearest": RO.EY9L, "linear": RO.X13G, "cubic": RO["2I2N"]}
RESEGMENTATION = RO.QP79
# radflow's own terms (defined in ontology/radflow.ttl), for what RO has no property for.
RADFLOW = Namespace("https://w3id.org/radflow/vocab#")
AGGREGATION_LABEL = RADFLOW.aggregation  # the IBSI aggregation label of a texture value, e.g. "3D, merged"
SETTINGS_DOCUMENT = RADFLOW.settingsDocument  # canonical JSON of a settings document (hashed into its id)

__all__ = [
    "RO", "ROO", "RADFLOW", "SCHEMA", "SPDX", "NCIT", "PROV", "RDF", "RDFS", "XSD", "DCTERMS",
]
