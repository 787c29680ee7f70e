"""Defaults live in the configuration schema (config/schemas/config.schema.yaml, which Snakemake's ``validate``
fills in) and in the typed objects that read each block (``Thresholds``, ``StabilityOptions``, ``StudyConfig``, ...)
for callers that bypass the workflow. These tests fail as soon as any of those places, config/config.yaml, the CLI
or the rules disagree."""
from __future__ import annotations

import dataclasses
import math
import re
from pathlib import Path

import pytest
import yaml

from radflow import store
from radflow.cli import build_parser
from radflow.modelling import study
from radflow.modelling.models import FEATURE_SETS, LEARNERS
from radflow.modelling.targets import BINARY, SURVIVAL
from radflow.pipeline import model as model_stage
from radflow.qc import Thresholds
from radflow.stability.options import StabilityOptions
from radflow.stability.perturbation import PerturbationSettings

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "config/schemas/config.schema.yaml").read_text())
CONFIG = yaml.safe_load((REPO / "config/config.yaml").read_text())


def schema_defaults(node: dict) -> dict:
    """The defaults an empty block gets from the schema, recursively (as jsonschema's default filling gives them)."""
    out = {}
    for key, sub in node.get("properties", {}).items():
        if "default" in sub:
            value = sub["default"]
            out[key] = {**value, **schema_defaults(sub)} if isinstance(value, dict) and "properties" in sub else value
    return out


DEFAULTS = schema_defaults(SCHEMA)


def _config_agrees(schema: dict, config: dict, where: str) -> list[str]:
    problems = []
    for key, sub in schema.get("properties", {}).items():
        if key not in config:
            continue
        if "properties" in sub and isinstance(config[key], dict):
            problems += _config_agrees(sub, config[key], f"{where}{key}.")
        elif "default" in sub and config[key] != sub["default"]:
            problems.append(f"{where}{key}: config.yaml {config[key]!r}, schema {sub['default']!r}")
    return problems


def test_config_yaml_shows_the_schema_defaults():
    assert _config_agrees(SCHEMA, CONFIG, "") == []


def test_qc_thresholds():
    qc = DEFAULTS["qc"]
    thresholds = Thresholds()
    for field in dataclasses.fields(Thresholds):
        assert field.name in qc, f"Thresholds.{field.name} has no schema default"
    for key, value in qc.items():
        if key == "intensity_range":
            expected = {m: (-math.inf if lo is None else lo, math.inf if hi is None else hi) for m, (lo, hi) in
                        value.items()}
            assert thresholds.intensity_range == expected
            assert Thresholds.from_config({key: value}).intensity_range == expected
        else:
            assert getattr(thresholds, key) == value, f"qc.{key}"


def test_stability_options():
    block, options = DEFAULTS["stability"], StabilityOptions()
    assert options == StabilityOptions.from_dict({}) == StabilityOptions.from_dict(block)
    assert list(options.methods) == [block["method"]]
    for key in ("icc_form", "confidence_level", "min_icc_ci_low", "seed", "segmentation_groups"):
        assert getattr(options, key) == block[key], f"stability.{key}"
    perturbation = dict(block["perturbation"])
    assert options.perturbation_icc_form == perturbation.pop("icc_form")
    assert dataclasses.asdict(PerturbationSettings()) == perturbation


def test_model_block():
    block = DEFAULTS["model"]
    # permute_outcome is the top-level switch model_permute_outcome (rules/model.smk folds it in)
    assert {k: v for k, v in study.DEFAULTS.items() if k != "permute_outcome"} == block
    assert study.DEFAULTS["permute_outcome"] is (SCHEMA["properties"]["model_permute_outcome"]["default"] is True)
    config = study.StudyConfig.from_dict({})
    assert config.cv.seed == block["seed"]
    assert (config.cv.outer_folds, config.cv.outer_repeats, config.cv.inner_folds) == (
        block["outer_folds"], block["outer_repeats"], block["inner_folds"])


@pytest.mark.parametrize("key, task", [("binary_models", BINARY), ("survival_models", SURVIVAL)])
def test_learner_names(key, task):
    pattern = SCHEMA["properties"]["model"]["properties"][key]["items"]["pattern"]
    learners, feature_sets = re.fullmatch(r"\^\(([^)]*)\)/\(([^)]*)\)\$", pattern).groups()
    assert sorted(learners.split("|")) == sorted(name for name, learner in LEARNERS.items() if learner.task == task)
    assert tuple(feature_sets.split("|")) == FEATURE_SETS


def test_table_lists():
    rules = (REPO / "rules/common.smk").read_text()

    def rule_tuple(name: str) -> tuple[str, ...]:
        return tuple(re.findall(r'"(\w+)"', re.search(rf"^{name} = \(([^)]*)\)", rules, re.M).group(1)))

    assert rule_tuple("MODEL_TABLE_NAMES") == store.WHOLE_TABLES == model_stage.OUTPUT_TABLES
    assert rule_tuple("STABILITY_TABLE_NAMES") == store.COHORT_TABLES


def test_cli_defaults():
    parser = build_parser()
    demo = parser.parse_args(["demo-cohort", "out"])
    assert (demo.patients, demo.seed) == (DEFAULTS["demo_patients"], DEFAULTS["demo_seed"])
    discover = parser.parse_args(["discover", "in", "inventory.json", "--rois", "[]"])
    assert discover.batch_size == DEFAULTS["batch_size"]
    assert discover.dates == DEFAULTS["pseudonymisation"]["dates"]
    assert discover.key_env == DEFAULTS["pseudonymisation"]["key_env"]
    assert parser.parse_args(["rdf", "db", "out.ttl"]).namespace == DEFAULTS["rdf"]["namespace"]
