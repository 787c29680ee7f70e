"""The run record: inputs by checksum and pseudonym only, local paths withheld from the recorded configuration, and a
run id that changes with configuration, code or inputs and with nothing else."""
from __future__ import annotations

import hashlib
import json

from conftest import REPO
from radflow.provenance.run_record import (WITHHELD, code_version, input_checksums, run_record, seeds,
                                           shareable_config)


def _inventory(tmp_path, content: bytes = b"pixels"):
    folder = tmp_path / "Smith_John" / "CT"
    folder.mkdir(parents=True)
    (folder / "1.dcm").write_bytes(content)
    (folder / "2.dcm").write_bytes(b"more pixels")
    (folder / "rs.dcm").write_bytes(b"contours")
    inventory = {"batches": {"b0000": [{"case_id": "case-abc", "scans": [{
        "scan": "test", "files": [str(folder / "1.dcm"), str(folder / "2.dcm")],
        "rois": [{"roi": "GTV", "kind": "RTSTRUCT", "label": "gtv_smith", "path": str(folder / "rs.dcm")}]}]}]}}
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps(inventory))
    return path


def test_inputs_are_recorded_by_checksum_and_pseudonym_only(tmp_path):
    table = input_checksums(_inventory(tmp_path))
    assert list(table.columns) == ["batch", "case_id", "scan", "role", "roi", "sha256", "size"]
    assert sorted(table["role"]) == ["image", "image", "mask"]
    assert set(table["sha256"]) == {hashlib.sha256(b).hexdigest() for b in (b"pixels", b"more pixels", b"contours")}
    text = table.to_csv()
    assert "Smith" not in text and "gtv_smith" not in text and str(tmp_path) not in text


def test_local_paths_are_withheld_and_the_demo_defaults_kept():
    config = {"input_dir": "/data/Smith_John", "clinical": "/data/clinical.csv", "input_manifest": None,
              "pseudonymisation": {"key_file": "/secure/key", "mapping_file": "/secure/map.csv", "key_env": "K"},
              "stability": {"seed": 42}, "model": {"seed": 7}, "demo_seed": 3}
    shared = shareable_config(config)
    assert shared["input_dir"] == shared["clinical"] == WITHHELD
    assert shared["pseudonymisation"] == {"key_file": WITHHELD, "mapping_file": WITHHELD, "key_env": "K"}
    assert shared["input_manifest"] is None
    assert config["input_dir"] == "/data/Smith_John"  # the caller's configuration is left alone
    demo = shareable_config({"input_dir": "resources/demo/dicom", "clinical": "resources/demo/clinical.csv"})
    assert demo == {"input_dir": "resources/demo/dicom", "clinical": "resources/demo/clinical.csv"}
    assert seeds(config) == {"demo": 3, "stability": 42, "model": 7}


def test_run_id_follows_configuration_code_and_inputs(tmp_path):
    config = {"input_dir": "resources/demo/dicom", "stability": {"seed": 42}}
    inputs = input_checksums(_inventory(tmp_path / "a"))
    first = run_record(config, REPO, inputs)
    assert run_record(config, REPO, inputs)["run_id"] == first["run_id"]
    assert run_record({**config, "stability": {"seed": 43}}, REPO, inputs)["run_id"] != first["run_id"]
    changed = input_checksums(_inventory(tmp_path / "b", content=b"other pixels"))
    assert run_record(config, REPO, changed)["run_id"] != first["run_id"]
    assert first["code_version"] == code_version(REPO) and first["code_version"].startswith(("git:", "sha256:"))
    assert first["config_sha256"] == hashlib.sha256(
        json.dumps(config, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
