"""Checks the Snakefile runs when it builds the DAG, before any job: what would otherwise fail minutes later inside a
rule, with the reason only in a log file, is one line on the terminal instead.

``plan(config, ...)`` returns the errors (the run stops: key missing, input path missing, settings document invalid,
ROI pattern not a regular expression, clinical CSV without patient_id, an outcome or event not coded 0/1, a survival
time not a number >= 0, a held-out centre not in the centre column) and the notes said once (no clinical table:
modelling skipped; no outcome column: no binary models; no centre: no harmonisation; clinical columns dropped), with
the effective clinical path, the columns to keep and the effective ``model`` options.
"""
from __future__ import annotations

import copy
import os
import re
import warnings
from dataclasses import dataclass, field

from radflow import csv_dialect

# Values of `clinical` that mean "no clinical table" (Snakemake's --config passes null as the text "null").
NO_CLINICAL = (None, "", "null", "none", "None", "NULL", "~", "false", "False")
DEMO_CLINICAL = "resources/demo/clinical.csv"


@dataclass
class Plan:
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    clinical: str | None = None  # the clinical CSV to use, or None
    clinical_keep: list[str] = field(default_factory=list)  # the clinical columns allowed into the results
    model: dict = field(default_factory=dict)  # the `model` options with unavailable columns switched off
    modelling: bool = False


# configuration paths a user may write as ~/...: expanded before anything reads them (Snakemake does not)
USER_PATHS = (("input_dir",), ("input_manifest",), ("clinical",), ("pseudonymisation", "key_file"),
              ("pseudonymisation", "mapping_file"))


def expand_user_paths(config: dict) -> None:
    """``~`` and ``~user`` at the start of the configured input paths, as a shell would expand them."""
    for keys in USER_PATHS:
        holder = config
        for key in keys[:-1]:
            holder = holder.get(key) or {}
        value = holder.get(keys[-1])
        if isinstance(value, str) and value.startswith("~"):
            holder[keys[-1]] = os.path.expanduser(value)


def config_errors(config: dict, schema_path: str) -> list[str]:
    """One line per violation of the configuration schema, naming the key (``model.outer_folds: 1 is less than the
    minimum of 2``)."""
    import jsonschema
    import yaml

    with open(schema_path) as fh:
        schema = yaml.safe_load(fh)
    validator = jsonschema.Draft202012Validator(schema)
    lines = []
    for error in sorted(validator.iter_errors(config), key=lambda e: [str(p) for p in e.absolute_path]):
        where = ".".join(str(p) for p in error.absolute_path) or "configuration"
        lines.append(f"config {where}: {' '.join(error.message.split())}")
    return lines


def check_key(settings: dict, demo: bool) -> str | None:
    """The reason no pseudonymisation key is available, or None."""
    from radflow.dicom.deid import PseudonymKeyError, load_key

    try:
        load_key(settings["key_env"], settings.get("key_file") or None, allow_demo_key=demo)
    except PseudonymKeyError as exc:
        return f"{exc} (real data are never run with the public demo key)"
    return None


def key_notes(settings: dict) -> list[str]:
    """What the user should know about the key file's bytes (``deid.key_file_note``)."""
    from radflow.dicom.deid import key_file_note

    note = key_file_note(settings.get("key_file") or None)
    return [] if note is None else [note]


def check_settings(paths: list[str], where) -> tuple[list[str], list[str]]:
    """(errors, notes) of loading each settings document; ``where(path)`` resolves a config path."""
    import yaml

    from radflow.settings import Settings, SettingsError

    errors, notes = [], []
    for given in paths:
        path = where(given)
        if not os.path.isfile(path):
            errors.append(f"features: settings file {given} does not exist")
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                Settings.from_yaml(path)
            except SettingsError as exc:
                errors.append(f"features: {exc}")
            except yaml.YAMLError as exc:
                errors.append(f"features: {given} is not valid YAML: {' '.join(str(exc).split())}")
        notes += [str(w.message) for w in caught]
    return errors, notes


def check_sequence_rules(items: list[dict]) -> list[str]:
    """``series.sequences`` that discovery would refuse (a pattern that is no regular expression, a name taken
    twice or by scan labels), before any job runs."""
    from radflow.sequences import SequenceError, rules_from_config

    try:
        rules_from_config(items)
    except SequenceError as exc:
        return [str(exc)]
    return []


def check_roi_patterns(rois: list[dict], aliases: dict) -> list[str]:
    errors = []
    patterns = [(f"rois[{i}] ({roi['name']})", roi["pattern"]) for i, roi in enumerate(rois)]
    patterns += [(f"roi_aliases.centres.{centre}.{roi}", pattern)
                 for centre, by_roi in (aliases.get("centres") or {}).items()
                 for roi, listed in by_roi.items() for pattern in listed]
    for where, pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            errors.append(f"{where}: pattern {pattern!r} is not a regular expression ({exc})")
    return errors


# a cell that starts like a number but is not one: "65 y", "3.2 cm", "<5"
NUMBER_WITH_TEXT = re.compile(r"\s*[<>~]?\s*[-+]?\d+([.,]\d+)?\s*\S.*")


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def covariate_notes(source: str, rows: list[dict[str, str]], covariates: list[str]) -> list[str]:
    """A note for each covariate that holds numbers written with text (units, "<5"): a text column becomes one
    indicator per category (``radflow.modelling.harmonisation.CovariateEncoder``), which is not what was meant."""
    notes = []
    for column in covariates:
        cells = [(row.get(column) or "").strip() for row in rows]
        cells = [cell for cell in cells if cell]
        texts = [cell for cell in cells if not _is_number(cell)]
        numeric_looking = [cell for cell in texts if NUMBER_WITH_TEXT.fullmatch(cell)]
        if texts and len(numeric_looking) * 2 >= len(cells):
            notes.append(f"{source}: covariate {column!r} holds numbers written with text (e.g. "
                         f"{numeric_looking[0]!r}): it is used as {len(set(cells))} categories, not as a number; "
                         "write the numbers alone to use it as one")
    return notes


def missing_centre_note(source: str, rows: list[dict[str, str]], model: dict) -> list[str]:
    """A note when some rows have no centre: those cases form one harmonisation batch of their own."""
    centre = model.get("centre")
    missing = sum(1 for row in rows if not (row.get(centre) or "").strip()) if centre else 0
    if not missing:
        return []
    return [f"{source}: {missing} row(s) have no value in the centre column {centre!r}: their cases form one ComBat "
            "batch of their own, '(no centre)'"]


def held_out_centre_errors(source: str, rows: list[dict[str, str]], model: dict) -> list[str]:
    """``model.held_out_centre`` must be a value of the centre column: otherwise no case is held out and the
    external validation the configuration asks for silently does not happen."""
    held_out, centre = model.get("held_out_centre"), model.get("centre")
    if held_out is None or not centre:
        return []
    centres = sorted({(row.get(centre) or "").strip() for row in rows} - {""})
    if str(held_out).strip() in centres:
        return []
    return [f"{source}: model.held_out_centre {str(held_out)!r} is not a value of the centre column {centre!r} "
            f"({', '.join(repr(c) for c in centres[:10])})"]


def outcome_coding_errors(path: str, rows: list[dict[str, str]], model: dict) -> list[str]:
    """The configured outcome columns' coding errors (``radflow.modelling.outcome_coding``), file name first."""
    from radflow.modelling.outcome_coding import coding_errors

    names = [model.get(key) for key in ("outcome", "survival_time", "survival_event")]
    columns = {name: [row.get(name) or "" for row in rows] for name in names if name}
    return [f"{os.path.basename(path)}: {error}" for error in coding_errors(columns, *names)]


def effective_model(model: dict, header: list[str] | None, source: str) -> tuple[dict, list[str]]:
    """The ``model`` options with the columns the clinical table lacks switched off, and what that means, said
    once. ``header`` None: the columns are not known yet (the demo cohort is generated by the workflow)."""
    model = copy.deepcopy(model)
    notes: list[str] = []
    if header is None:
        return model, notes
    if model.get("outcome") and model["outcome"] not in header:
        notes.append(f"{source} has no outcome column {model['outcome']!r}: no binary outcome models")
        model["outcome"] = None
    survival = [model.get("survival_time"), model.get("survival_event")]
    if all(survival) and not all(column in header for column in survival):
        missing = [c for c in survival if c not in header]
        notes.append(f"{source} has no survival column(s) {missing}: no survival models")
        model["survival_time"] = model["survival_event"] = None
    if model.get("centre") and model["centre"] not in header:
        notes.append(f"{source} has no centre column {model['centre']!r}: one centre assumed, so no ComBat "
                     "harmonisation and no held-out-centre validation")
        model["centre"] = None
        model["harmonisation"] = {**model.get("harmonisation", {}), "method": "none"}
        model["held_out_centre"] = None
    covariates = model.get("covariates") or []
    missing = [c for c in covariates if c not in header]
    if missing:
        model["covariates"] = [c for c in covariates if c in header]
        dropped_sets = ""
        if not model["covariates"]:
            for key in ("binary_models", "survival_models"):
                if key in model:
                    model[key] = [m for m in model[key] if m.endswith("/radiomics")]
            dropped_sets = "; clinical and combined models dropped"
        notes.append(f"{source} has no covariate column(s) {missing}{dropped_sets}")
    return model, notes


def kept_clinical_columns(model: dict, extra: list[str]) -> list[str]:
    """The clinical columns the configuration names: outcome, survival, centre, covariates, ``clinical_keep``."""
    named = [model.get("outcome"), model.get("survival_time"), model.get("survival_event"), model.get("centre"),
             *(model.get("covariates") or []), *extra]
    return list(dict.fromkeys(c for c in named if c))


def _check_inputs(config: dict, demo: bool, where, result: Plan) -> None:
    """The key, the settings documents, the input paths and the ROI patterns (errors and notes into ``result``)."""
    try:
        reason = check_key(config["pseudonymisation"], demo)
        errors, notes = check_settings(list(config.get("features") or []), where)
        notes += key_notes(config["pseudonymisation"])
    except ImportError as exc:  # Snakemake runs from an environment without radflow's dependencies (--sdm conda)
        reason, errors = None, []
        notes = [f"pre-flight key and settings checks skipped: {exc} in Snakemake's environment (the rules' "
                 "environment is checked when they run)"]
    if reason:
        result.errors.append(reason)
    if not demo:
        input_dir, manifest = config.get("input_dir"), config.get("input_manifest")
        if input_dir and not os.path.isdir(input_dir):
            result.errors.append(f"input_dir {input_dir} does not exist or is not a folder")
        if manifest and not os.path.isfile(manifest):
            result.errors.append(f"input_manifest {manifest} does not exist")
        if not input_dir and not manifest:
            result.errors.append("neither input_dir nor input_manifest is set: nothing to process")
    result.errors += errors
    result.notes += list(dict.fromkeys(notes))
    result.errors += check_roi_patterns(config.get("rois") or [], config.get("roi_aliases") or {})
    result.errors += check_sequence_rules((config.get("series") or {}).get("sequences") or [])


def plan(config: dict, demo: bool, where, main_process: bool = True) -> Plan:
    """Everything the Snakefile decides from the configuration before building jobs (see the module docstring).
    ``where(path)``: a config path resolved against the working directory or the repository."""
    from radflow.clinical_columns import select_columns

    result = Plan()
    model = dict(config.get("model") or {})
    if main_process:  # a cluster job re-reads the Snakefile: the checks ran before it was submitted
        _check_inputs(config, demo, where, result)

    clinical = config.get("clinical")
    if clinical in NO_CLINICAL:
        clinical = None
    elif not demo and clinical == DEMO_CLINICAL:
        result.notes.append(f"clinical is the demo table {DEMO_CLINICAL}, which does not describe input_dir: no "
                            "clinical table used (set clinical=/path/to/clinical.csv)")
        clinical = None
    result.clinical = clinical

    if clinical is None:
        result.notes.append("no clinical table: discovery, QC, features and stability only; modelling skipped "
                            "(it needs outcomes from a clinical CSV with patient_id)")
        result.model = model
        return result
    header: list[str] | None = None
    rows: list[dict[str, str]] = []
    source = os.path.basename(clinical)
    if not (demo and clinical == DEMO_CLINICAL):
        if not os.path.isfile(clinical):
            result.errors.append(f"clinical table {clinical} does not exist")
            return result
        try:
            dialect = csv_dialect.sniff(clinical)
        except ValueError as exc:  # a workbook, not a CSV
            result.errors.append(f"clinical table {exc}")
            return result
        header, rows = csv_dialect.read_rows(clinical, dialect)
        if "patient_id" not in header:
            result.errors.append(f"clinical table {clinical} has no patient_id column (columns: {header})")
            return result
        if dialect.describe():
            result.notes.append(f"{source} read as {dialect.describe()}")
    model, notes = effective_model(model, header, source)
    result.model = model
    result.clinical_keep = kept_clinical_columns(model, list(config.get("clinical_keep") or []))
    if header is not None:
        summary = select_columns(header, result.clinical_keep).summary(source)
        if summary:
            notes.append(summary)
    if not model.get("enabled", True):
        notes.append("model.enabled is false: modelling skipped")
    elif not model.get("outcome") and not (model.get("survival_time") and model.get("survival_event")):
        notes.append("no outcome and no survival columns: modelling skipped")
    else:
        result.modelling = True
        if header is not None:
            result.errors += outcome_coding_errors(clinical, rows, model)
            result.errors += held_out_centre_errors(source, rows, model)
            notes += covariate_notes(source, rows, list(model.get("covariates") or []))
            notes += missing_centre_note(source, rows, model)
    result.notes += notes
    return result


def settings_coverage_note(inventory: dict, settings_paths: list[str]) -> str | None:
    """After discovery: the note for scans of a modality no `features` document is meant for (its ``modality``: CT,
    PET, MR or generic; ``Settings.applies_to``), which get no features at all (None when every scan has one, or
    when Snakemake's environment cannot load settings documents)."""
    try:
        from radflow.settings import SHIPPED_DOCUMENTS, Settings
    except ImportError:  # Snakemake runs from an environment without radflow's dependencies (--sdm conda)
        return None
    documents = [Settings.from_yaml(path) for path in settings_paths]
    counts: dict[tuple[str, str], int] = {}
    for batch in inventory.get("batches", {}).values():
        for case in batch:
            for scan in case.get("scans", []):
                if scan.get("error"):  # failed at discovery (no image series, ...): no features either way
                    continue
                kind = (scan.get("modality") or "CT", scan.get("sequence") or "")  # a manifest image: CT by default
                counts[kind] = counts.get(kind, 0) + 1
    missing = {kind: n for kind, n in sorted(counts.items())
               if not any(doc.applies_to(*kind) for doc in documents)}
    if not missing:
        return None
    counted = [f"{n} {modality}{' ' + sequence if sequence else ''}" for (modality, sequence), n in missing.items()]
    scans = " and ".join([", ".join(counted[:-1]), counted[-1]] if len(counted) > 1 else counted) + " scan(s)"
    shipped = " and ".join(dict.fromkeys(SHIPPED_DOCUMENTS[m] for m, _ in missing if m in SHIPPED_DOCUMENTS))
    return (f"features: no settings document is meant for {scans}, which get no features; add "
            + (f"{shipped} (or your own) " if shipped else "a document of their modality ")
            + "or a generic one to `features`")


def has_test_retest_pair(labels: list[str]) -> bool:
    """Whether scan labels hold a test and a retest of one kind (``test``/``retest``, ``t2w_test``/``t2w_retest``)."""
    from radflow.timepoints import split_label

    kinds: dict[str, set[str]] = {}
    for label in labels:
        prefix, base = split_label(label)
        kinds.setdefault(prefix, set()).add(base)
    return any({"test", "retest"} <= bases for bases in kinds.values())


def retest_note(inventory: dict, methods: list[str]) -> str | None:
    """After discovery: the note for a test-retest analysis of a cohort with fewer than two cases scanned twice
    (None when there are enough, or test-retest is not configured)."""
    if "test-retest" not in methods:
        return None
    cases = [case for batch in inventory.get("batches", {}).values() for case in batch]
    pairs = sum(1 for case in cases if has_test_retest_pair([scan.get("scan") or "" for scan in case.get("scans", [])]))
    if pairs >= 2:
        return None
    return (f"stability.method test-retest, but {pairs} of {len(cases)} cases have both a test and a retest scan: "
            "no test-retest ICCs; for a cohort without retest scans set stability.method: perturbation "
            "(perturbed copies of each test scan)")


def stability_after_discovery(inventory: dict, methods: list[str], without_retest: str) -> tuple[list[str], str | None]:
    """(the stability methods to run, the note to say once) after discovery: test-retest is replaced by
    perturbation when the cohort has fewer than two retest pairs and ``stability.without_retest`` is
    ``perturbation``; with ``message`` (default) the methods stay and the note says what to do."""
    note = retest_note(inventory, methods)
    if note is None or without_retest != "perturbation":
        return list(methods), note
    replaced = list(dict.fromkeys("perturbation" if m == "test-retest" else m for m in methods))
    return replaced, note.split(": no test-retest ICCs")[0] + ": perturbation stability instead (stability.without_retest)"
