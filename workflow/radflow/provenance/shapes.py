"""SHACL validation of the RDF export against ``ontology/shapes.ttl`` (pyshacl), with a readable report.

A large export is validated on a sample: every node except feature values, and an even sample of ``max_values``
feature values (those whose IRI checksum falls in the sampled share). The sample is read block by block from the streamed Turtle,
in which each subject's statements form one block ending in `` .``; the whole file is never parsed at once.
"""
from __future__ import annotations

import zlib
from pathlib import Path

import rdflib

from radflow.provenance.turtle import open_text


def _blocks(lines):
    block: list[str] = []
    for line in lines:
        block.append(line)
        if line.rstrip().endswith(" .") or line.startswith("@prefix") or not line.strip():
            yield "".join(block)
            block = []
    if block:
        yield "".join(block)


def _subject(block: str) -> str:
    return block.split(" ", 1)[0]


def sampled_turtle(turtle: Path, namespace: str, max_values: int) -> tuple[str, int, int]:
    """(Turtle text of the sample, feature values in the file, feature values kept).

    A feature value is kept when a checksum of its IRI falls in the sampled share, so all of its statements are kept
    together whatever the order of the file (Turtle blocks or N-Triples lines) and the sample is the same on rerun."""
    value_prefix = f"<{namespace}value/"
    with open_text(turtle) as fh:
        subjects = {zlib.crc32(_subject(line).encode()) for line in fh if line.startswith(value_prefix)}
    n_values = len(subjects)
    del subjects
    share = min(1.0, max_values / n_values) if n_values else 1.0
    kept_subjects, parts = set(), []
    with open_text(turtle) as fh:
        for block in _blocks(fh):
            if block.startswith(value_prefix):
                subject = _subject(block)
                if zlib.crc32(subject.encode()) > share * 0xFFFFFFFF:
                    continue
                kept_subjects.add(zlib.crc32(subject.encode()))
            parts.append(block)
    return "".join(parts), n_values, len(kept_subjects)


def validate(turtle: Path, shapes: Path, namespace: str, max_values: int = 20_000) -> tuple[bool, str]:
    """(conforms, report): pyshacl's verdict on the (sampled) export and a report a person can read."""
    import pyshacl

    text, n_values, kept = sampled_turtle(turtle, namespace, max_values)
    data = rdflib.Graph().parse(data=text, format="turtle")
    shapes_graph = rdflib.Graph().parse(shapes, format="turtle")
    conforms, results, _ = pyshacl.validate(data, shacl_graph=shapes_graph, inference="none", advanced=True)
    lines = [f"SHACL validation of {turtle.name} against {shapes.name}: {'conforms' if conforms else 'VIOLATIONS'}",
             f"feature values checked: {kept} of {n_values}" + (" (an even sample)" if kept < n_values else ""),
             f"triples checked: {len(data)}"]
    if not conforms:
        lines += ["", *_violations(results)]
    return conforms, "\n".join(lines) + "\n"


def _violations(results: rdflib.Graph, limit: int = 50) -> list[str]:
    """One line per violation: the message, the focus node and the property, grouped by message."""
    sh = rdflib.Namespace("http://www.w3.org/ns/shacl#")
    found: dict[str, list[str]] = {}
    for result in results.subjects(rdflib.RDF.type, sh.ValidationResult):
        message = str(results.value(result, sh.resultMessage) or "constraint violated")
        focus = results.value(result, sh.focusNode)
        path = results.value(result, sh.resultPath)
        found.setdefault(message, []).append(f"{focus} (property {path})" if path is not None else str(focus))
    lines = []
    for message, nodes in sorted(found.items()):
        lines.append(f"- {message}: {len(nodes)} node(s)")
        lines += [f"    {node}" for node in sorted(nodes)[:limit]]
        if len(nodes) > limit:
            lines.append(f"    ... and {len(nodes) - limit} more")
    return lines
