"""Validate FatturaPA documents against the official XSD (schema 1.2.2).

The XSD in tests/data/fatturapa/ is the Agenzia delle Entrate's schema as shipped in
the PyPI package odoo12-addon-l10n-it-fatturapa 12.0.3.0.3
(odoo/addons/l10n_it_fatturapa/bindings/xsd/), byte for byte; its SHA-256 is checked
below. The schema imports the W3C XML-signature schema from the network only for the
optional <ds:Signature>; tests run offline, so that import resolves to a minimal local
stand-in that declares the element (our invoices are not signed).
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from lxml import etree  # type: ignore[import-untyped]  # no maintained stubs

XSD_PATH = (
    Path(__file__).parent
    / "data"
    / "fatturapa"
    / "Schema_del_file_xml_FatturaPA_versione_1.2.2.xsd"
)
XSD_SHA256 = "56dd2dc2accdbc3b991c614abf06508e801d99a4b5c93f48df707a376a2dc3f0"

_XMLDSIG_STAND_IN = b"""<?xml version="1.0"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
           targetNamespace="http://www.w3.org/2000/09/xmldsig#" elementFormDefault="qualified">
  <xs:element name="Signature">
    <xs:complexType><xs:sequence>
      <xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"""


class _OfflineSignatureSchema(etree.Resolver):  # type: ignore[misc]
    def resolve(self, url: str, pubid: str, context: Any) -> Any:
        if url.endswith("xmldsig-core-schema.xsd"):
            return self.resolve_string(_XMLDSIG_STAND_IN, context)
        return None


@lru_cache(maxsize=1)
def fatturapa_schema() -> Any:
    data = XSD_PATH.read_bytes()
    assert hashlib.sha256(data).hexdigest() == XSD_SHA256, "the XSD is not the official file"
    parser = etree.XMLParser(no_network=True)
    parser.resolvers.add(_OfflineSignatureSchema())
    return etree.XMLSchema(etree.fromstring(data, parser, base_url=str(XSD_PATH)))


def validate_fatturapa(xml: str) -> None:
    schema = fatturapa_schema()
    document = etree.fromstring(xml.encode())
    if not schema.validate(document):
        raise AssertionError(f"not a valid FatturaPA document: {schema.error_log}")
