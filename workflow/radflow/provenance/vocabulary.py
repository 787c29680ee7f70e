"""Namespaces and the RO classes radflow uses for settings (IRIs only; the RO file itself is not redistributed)."""
from rdflib import Namespace, URIRef
from rdflib.namespace import DCAT, DCTERMS, PROV, RDF, RDFS, XSD

RO = Namespace("http://www.radiomics.org/RO/")
ROO = Namespace("http://www.cancerdata.org/roo/")
SCHEMA = Namespace("http://schema.org/")
SPDX = Namespace("http://spdx.org/rdf/terms#")
NCIT = Namespace("http://ncicb.nci.nih.gov/xml/owl/EVS/Thesaurus.owl#")
MLS = Namespace("http://www.w3.org/ns/mls#")
UNIT = Namespace("http://qudt.org/vocab/unit/")

HAS_VALUE = ROO.P100042  # RO has no datatype property for values; FAIR radiomics data use ROO's has_value
HAS_UNIT = ROO.P100027
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
# IBSI aggregation label -> RO AggregationParameters subclass (RO v2.0 labels in brackets).
AGGREGATIONS = {
    "2D": RO["3IDG"],  # 2D: averaged over slices
    "2D, averaged": RO.BTW3,  # 2DAverage: averaged over slices and directions
    "2D, slice-merged": RO.SUJT,  # 2DMerging: directions merged per slice, then averaged
    "2.5D": RO["62GR"],  # 2.5D: merged over all slices
    "2.5D, direction-merged": RO.JJUI,  # 2.5DAverage: merged per direction, then averaged
    "2.5D, merged": RO.ZW7Z,  # 2.5DMerging: merged over all slices and directions
    "3D": RO.KOBO,  # 3D: calculated over the volume
    "3D, averaged": RO.ITBB,  # 3DAverage: averaged over 3D directions
    "3D, merged": RO.IAZD,  # 3DMerging: 3D directions merged
}
RO_ONTOLOGY = URIRef("http://www.radiomics.org/RO")  # Radiomics Ontology v2.0
IBSI_STANDARD = URIRef("https://doi.org/10.1148/radiol.2020191145")  # Zwanenburg et al., Radiology 2020
UNIT_MM = UNIT.MilliM  # QUDT millimetre
# Units of the morphological features that have one (roo:P100027); the others are ratios or counts.
FEATURE_UNITS = {
    "RNU0": UNIT.MilliM3, "YEKZ": UNIT.MilliM3, "C0JK": UNIT.MilliM2, "2PR5": UNIT["PER-MilliM"],
    "KLMA": UNIT.MilliM, "L0JK": UNIT.MilliM, "TDIC": UNIT.MilliM, "P9VJ": UNIT.MilliM, "7J51": UNIT.MilliM,
}
# radflow's own terms (defined in ontology/radflow.ttl), for what RO has no property for.
RADFLOW = Namespace("https://w3id.org/radflow/vocab#")
AGGREGATION_LABEL = RADFLOW.aggregation  # the IBSI aggregation label of a texture value, e.g. "3D, merged"
SETTINGS_DOCUMENT = RADFLOW.settingsDocument  # canonical JSON of a settings document (hashed into its id)
# RO types both fractions of these IVH features with one class (BC2M volume fraction, GBPN intensity at volume
# fraction): radflow's subclasses (ontology/radflow.ttl) tell the 10% and 90% values apart.
DISTINCT_FEATURE_CLASSES = {
    "NK6P": RADFLOW.VolumeFractionAtIntensity10, "4279": RADFLOW.VolumeFractionAtIntensity90,
    "PWN1": RADFLOW.IntensityAtVolumeFraction10, "BOHI": RADFLOW.IntensityAtVolumeFraction90,
}

__all__ = [
    "RO", "ROO", "RADFLOW", "SCHEMA", "SPDX", "NCIT", "MLS", "PROV", "RDF", "RDFS", "XSD", "DCTERMS", "DCAT",
]
