"""A streaming Turtle writer: triples go to the file as they are added, so the export never holds a graph in memory.

rdflib's serializer needs the whole graph and computes a prefixed name for every IRI (on slash-laden IRIs that grows
about as n^1.7). This writer emits one statement per triple, sharing the subject with ``;`` while consecutive triples
have the same subject, and abbreviates an IRI only when its local part is a plain name. The output is Turtle 1.1:
rdflib (and any other parser) reads it back to the same graph. Deterministic: the same triples in the same order give
the same bytes; a ``.gz`` destination is written with a zero gzip timestamp for the same reason.

Doubles are written with Python's shortest round-trip form (``repr``), so a value read back equals the stored double
bit for bit (rdflib's own Turtle writes ``%e``, 7 significant digits).
"""
from __future__ import annotations

import gzip
import io
import math
import re
from pathlib import Path
from typing import IO

from rdflib import BNode, Literal, URIRef
from rdflib.namespace import XSD

_LOCAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*\Z")
_IRI_UNSAFE = re.compile(r'[\x00-\x20<>"{}|^`\\]')
_STRING_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_STRING_UNSAFE = re.compile(r'[\\"\n\r\t]')
_XSD_DOUBLE, _XSD_INTEGER, _XSD_BOOLEAN = str(XSD.double), str(XSD.integer), str(XSD.boolean)


def open_text(path: Path) -> IO[str]:
    """A Turtle file (plain or ``.gz``) opened for reading text."""
    path = Path(path)
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def double_lexical(value: float) -> str:
    """The xsd:double lexical form that parses back to exactly ``value``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "INF" if value > 0 else "-INF"
    return repr(float(value))


def _iri(iri: str) -> str:
    return "<" + _IRI_UNSAFE.sub(lambda m: "%{:02X}".format(ord(m.group())), iri) + ">"


def _string(text: str) -> str:
    return '"' + _STRING_UNSAFE.sub(lambda m: _STRING_ESCAPES[m.group()], text) + '"'


class TurtleWriter:
    """Write triples of rdflib terms as Turtle to ``destination`` (a path; ``.gz`` compresses) or a text stream.

    Prefixes must be bound before the first triple. Use as a context manager, or call :meth:`close`.
    Has the ``add``/``bind`` interface of ``rdflib.Graph``, so the same export code feeds either.
    """

    def __init__(self, destination: Path | IO[str], prefixes: dict[str, str] | None = None):
        self._file: IO[bytes] | None = None  # the .gz file under the gzip stream (GzipFile leaves it open)
        self._own = isinstance(destination, (str, Path))
        self._out: IO[str]
        if isinstance(destination, (str, Path)):
            path = Path(destination)
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.suffix == ".gz":
                self._file = open(path, "wb")
                gz = gzip.GzipFile(filename="", mode="wb", fileobj=self._file, mtime=0)
                self._out = io.TextIOWrapper(gz, encoding="utf-8", newline="\n")
            else:
                self._out = open(path, "w", encoding="utf-8", newline="\n")
        else:
            self._out = destination
        self._prefixes: list[tuple[str, str]] = []
        self._subject: str | None = None
        self._started = False
        self.triples = 0
        for prefix, namespace in (prefixes or {}).items():
            self.bind(prefix, namespace)

    # -- rdflib.Graph-like interface
    def bind(self, prefix: str, namespace, override: bool = True) -> None:
        namespace = str(namespace)
        if any(p == prefix or ns == namespace for p, ns in self._prefixes):
            return
        if self._started:
            raise RuntimeError(f"prefix {prefix}: bind every prefix before the first triple")
        self._prefixes.append((prefix, namespace))
        # longest namespace first, so a nested namespace wins over its parent
        self._prefixes.sort(key=lambda item: -len(item[1]))

    def add(self, triple) -> None:
        subject, predicate, obj = triple
        if not self._started:
            self._start()
        s = self.term(subject)
        p = "a" if predicate == _RDF_TYPE else self.term(predicate)
        o = self.term(obj)
        if s == self._subject:
            self._out.write(f" ;\n    {p} {o}")
        else:
            if self._subject is not None:
                self._out.write(" .\n")
            self._out.write(f"{s} {p} {o}")
            self._subject = s
        self.triples += 1

    def __len__(self) -> int:
        return self.triples

    # -- terms
    def term(self, node) -> str:
        if isinstance(node, URIRef):
            return self._name(str(node))
        if isinstance(node, Literal):
            return self._literal(node)
        if isinstance(node, BNode):
            return f"_:{node}"
        raise TypeError(f"not an RDF term: {node!r}")

    def _name(self, iri: str) -> str:
        for prefix, namespace in self._prefixes:
            if iri.startswith(namespace) and _LOCAL_NAME.match(iri, len(namespace)):
                return f"{prefix}:{iri[len(namespace):]}"
        return _iri(iri)

    def _literal(self, literal: Literal) -> str:
        datatype = literal.datatype
        if datatype is None:
            text = _string(str(literal))
            return f"{text}@{literal.language}" if literal.language else text
        dt = str(datatype)
        if dt == _XSD_DOUBLE:
            value = literal.value if isinstance(literal.value, float) else float(str(literal))
            return f'"{double_lexical(value)}"^^xsd:double'
        if dt == _XSD_INTEGER:
            return str(int(literal))
        if dt == _XSD_BOOLEAN:
            return "true" if literal.value else "false"
        return f"{_string(str(literal))}^^{self._name(dt)}"

    # -- file
    def _start(self) -> None:
        self._started = True
        if not any(ns == str(XSD) for _, ns in self._prefixes):
            self._prefixes.append(("xsd", str(XSD)))
            self._prefixes.sort(key=lambda item: -len(item[1]))
        for prefix, namespace in sorted(self._prefixes):
            self._out.write(f"@prefix {prefix}: {_iri(namespace)} .\n")
        self._out.write("\n")

    def close(self) -> None:
        if not self._started:
            self._start()
        if self._subject is not None:
            self._out.write(" .\n")
            self._subject = None
        self._out.flush()
        if self._own:
            self._out.close()
            if self._file is not None:
                self._file.close()

    def __enter__(self) -> TurtleWriter:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_RDF_TYPE = URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type")
