"""Rule executions of a run (rule, batch, start and end time), read from the metadata Snakemake keeps per output file.

Snakemake records, for every output file it produced, the rule, the job's start and end time (epoch seconds) and
its inputs in ``.snakemake/metadata/<base64 of the output path>`` (JSON). Grouping those records by job gives one
execution per rule run: the RDF export's PROV activities and the run crate's actions. Only rule names, batch ids
and times are taken: the recorded shell commands and parameters may name local paths.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

_BATCH = re.compile(r"/batches/([^/]+)/")


@dataclass(frozen=True)
class Execution:
    rule: str
    batch: str  # "" for a cohort-level rule
    start: float
    end: float
    outputs: tuple[str, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"{self.rule}/{self.batch}" if self.batch else self.rule

    @property
    def started(self) -> str:
        return iso_time(self.start)

    @property
    def ended(self) -> str:
        return iso_time(self.end)


def iso_time(epoch: float) -> str:
    """UTC xsd:dateTime, to the millisecond."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _output_path(name: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(name + "=" * (-len(name) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None


def read_executions(metadata_dir: Path) -> list[Execution]:
    """Every completed rule execution recorded under ``metadata_dir`` (``.snakemake/metadata``), in start order."""
    jobs: dict[tuple, list[str]] = {}
    if not metadata_dir.is_dir():
        return []
    for record_file in sorted(metadata_dir.iterdir()):
        output = _output_path(record_file.name)
        try:
            record = json.loads(record_file.read_text())
        except (OSError, ValueError):
            continue
        if output is None or record.get("incomplete") or record.get("starttime") is None:
            continue
        key = (record["rule"], record.get("job_hash"), record["starttime"], record.get("endtime") or record["starttime"])
        jobs.setdefault(key, []).append(output)
    executions = []
    for (rule, _, start, end), outputs in jobs.items():
        batches = {m.group(1) for path in outputs for m in [_BATCH.search("/" + path)] if m}
        batch = batches.pop() if len(batches) == 1 else ""
        executions.append(Execution(rule, batch, float(start), float(end), tuple(sorted(outputs))))
    return sorted(executions, key=lambda e: (e.start, e.rule, e.batch))


def latest_per_job(executions: list[Execution]) -> list[Execution]:
    """One execution per rule and batch: the latest (a rule rerun replaces its outputs' records)."""
    latest: dict[tuple[str, str], Execution] = {}
    for execution in executions:
        key = (execution.rule, execution.batch)
        if key not in latest or execution.end >= latest[key].end:
            latest[key] = execution
    return sorted(latest.values(), key=lambda e: (e.start, e.rule, e.batch))
