"""The streaming Turtle writer: what it writes parses back (rdflib) to exactly the triples added, doubles keep every bit,
and the same triples give the same bytes (plain and gzip)."""
from __future__ import annotations

import gzip
import io
import math
import struct

import rdflib
from hypothesis import given, settings
from hypothesis import strategies as st
from rdflib import BNode, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import RDF, XSD

from radflow.provenance.turtle import TurtleWriter, double_lexical

EX = Namespace("https://example.org/ns/")


def _write(triples, prefixes=None) -> str:
    out = io.StringIO()
    with TurtleWriter(out, prefixes or {"ex": str(EX)}) as writer:
        for triple in triples:
            writer.add(triple)
    return out.getvalue()


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


@settings(max_examples=300, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=True, width=64))
def test_a_double_read_back_equals_the_written_one_bit_for_bit(value):
    text = _write([(EX.v, EX.value, Literal(value, datatype=XSD.double))])
    (parsed,) = rdflib.Graph().parse(data=text, format="turtle").objects(EX.v, EX.value)
    assert _bits(float(parsed)) == _bits(value)


def test_nan_and_infinities_use_the_xsd_lexical_forms():
    assert [double_lexical(v) for v in (math.nan, math.inf, -math.inf, 2745.708123456789)] == [
        "NaN", "INF", "-INF", "2745.708123456789"]


def test_the_written_graph_is_the_graph_added():
    rows = [
        (EX["value/case-1/test/GTV/abc/RNU0/3D"], RDF.type, URIRef("http://www.radiomics.org/RO/RNU0")),
        (EX["value/case-1/test/GTV/abc/RNU0/3D"], EX.value, Literal(1234.5678901234567, datatype=XSD.double)),
        (EX["value/case-1/test/GTV/abc/RNU0/3D"], EX.label, Literal('quote " backslash \\ newline\n tab\t')),
        (EX["value/case-1/test/GTV/abc/RNU0/3D"], EX["count"], Literal(12, datatype=XSD.integer)),
        (EX["value/case-1/test/GTV/abc/RNU0/3D"], EX.flag, Literal(False)),
        (EX.run, EX.started, Literal("2026-12-05T08:00:00Z", datatype=XSD.dateTime)),
        (EX.run, EX.checksum, BNode("sha256_abc")),
        (BNode("sha256_abc"), EX.value, Literal("abc")),
        (EX.run, EX.lang, Literal("Tumour", lang="en-GB")),
        (URIRef("https://example.org/other path/x{y}"), EX.p, EX["odd/iri with space"]),
        (EX.a, EX.b, URIRef("http://www.radiomics.org/RO/2I2N")),  # local name starting with a digit: written whole
    ]
    text = _write(rows, {"ex": str(EX), "ro": "http://www.radiomics.org/RO/"})
    parsed = rdflib.Graph().parse(data=text, format="turtle")
    def encoded(term):  # IRIs with characters Turtle forbids are percent-encoded on the way out
        if isinstance(term, URIRef):
            return URIRef(str(term).replace(" ", "%20").replace("{", "%7B").replace("}", "%7D"))
        return term

    expected = rdflib.Graph()
    for s, p, o in rows:
        expected.add((encoded(s), encoded(p), encoded(o)))
    assert isomorphic(parsed, expected)


def test_same_triples_same_bytes_plain_and_gzip(tmp_path):
    rows = [(EX[f"v{i}"], EX.value, Literal(i / 7, datatype=XSD.double)) for i in range(100)]
    outputs = []
    for name in ("a.ttl.gz", "b.ttl.gz", "a.ttl", "b.ttl"):
        with TurtleWriter(tmp_path / name, {"ex": str(EX)}) as writer:
            for row in rows:
                writer.add(row)
        outputs.append((tmp_path / name).read_bytes())
    assert outputs[0] == outputs[1] and outputs[2] == outputs[3]
    assert gzip.decompress(outputs[0]) == outputs[2]
    assert len(rdflib.Graph().parse(tmp_path / "a.ttl", format="turtle")) == 100


def test_binding_a_prefix_after_the_first_triple_is_an_error():
    writer = TurtleWriter(io.StringIO(), {"ex": str(EX)})
    writer.add((EX.a, EX.b, EX.c))
    try:
        writer.bind("other", "https://other.example/")
    except RuntimeError as error:
        assert "before the first triple" in str(error)
    else:
        raise AssertionError("a late prefix must be refused")
