"""Regenerate the feature table (workflow/radflow/data/ibsi_features.csv, linked as ontology/ibsi_features.csv) (IBSI code -> family, name, RO class) from the IBSI-1 reference table.

Maintainer tool, run by hand: `python ontology/make_feature_table.py ../shared/ibsi/reference/ibsi1_reference_values.csv`.
The five IBSI features without any consensus reference value are appended from the IBSI documentation's code list.
"""
import csv
import sys

FAMILY_KEYS = {
    "Morphology": "morphology",
    "Local intensity": "local_intensity",
    "Statistics": "statistics",
    "Intensity histogram": "intensity_histogram",
    "Intensity volume histogram": "ivh",
    "Co-occurrence matrix": "glcm",
    "Run length matrix": "glrlm",
    "Size zone matrix": "glszm",
    "Distance zone matrix": "gldzm",
    "Neighbourhood grey tone difference matrix": "ngtdm",
    "Neighbouring grey level dependence matrix": "ngldm",
}
# RO v2.0 has one class for each IVH feature kind (not one per fraction) and names robust MAD with its own code.
RO_CLASS_OVERRIDES = {
    "NK6P": "BC2M", "4279": "BC2M", "PWN1": "GBPN", "BOHI": "GBPN", "WITY": "DDTU", "JXJA": "CNV2", "1128": "CAC8",
}
WITHOUT_REFERENCE = [
    ("ZH1A", "Volume density (OMBB)", "Morphology", "HCUG"),
    ("IQYR", "Area density (OMBB)", "Morphology", "HCUG"),
    ("SWZ1", "Volume density (MVEE)", "Morphology", "HCUG"),
    ("BRI8", "Area density (MVEE)", "Morphology", "HCUG"),
    ("9CMM", "Area under the IVH curve", "Intensity volume histogram", "P88C"),
]


def main(reference_csv: str, out_csv: str = "workflow/radflow/data/ibsi_features.csv") -> None:
    seen: dict[str, tuple[str, str, str]] = {}
    with open(reference_csv, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["is_diagnostic"] == "True":
                continue
            seen.setdefault(row["ibsi_code"], (row["feature_name"], row["feature_family"], row["family_code"]))
    for code, name, family, family_code in WITHOUT_REFERENCE:
        seen.setdefault(code, (name, family, family_code))
    with open(out_csv, "w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["ibsi_code", "family", "family_code", "feature", "ro_class"])
        for code, (name, family, family_code) in seen.items():
            writer.writerow([code, FAMILY_KEYS[family], family_code, name, f"http://www.radiomics.org/RO/{RO_CLASS_OVERRIDES.get(code, code)}"])


if __name__ == "__main__":
    main(*sys.argv[1:])
