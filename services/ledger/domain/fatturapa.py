"""A contract invoice as a FatturaPA document (format FPA12, schema 1.2.2).

Pure function of the issued invoice's recorded data, so the same invoice always
renders the same bytes. The fields a public body's office checks:
- FormatoTrasmissione FPA12 and CodiceDestinatario = the body's 6-character office code;
- DatiOrdineAcquisto/CodiceCIG: the tender's CIG (without it the body may not pay);
- EsigibilitaIVA "S" on the VAT summary: split payment;
- Natura on every 0% line and summary (pass-through items: N1, outside the VAT base);
- DatiBollo (BolloVirtuale SI, ImportoBollo) when the invoice owes stamp duty.
A test validates the output against the official XSD (tests/data/fatturapa/).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Mapping
from datetime import date
from typing import Any

from services.common.money import format_cents
from services.ledger.domain.contracts import last_day_of
from services.ledger.domain.facts import format_percent_bp

NAMESPACE = "http://ivaservizi.agenziaentrate.gov.it/docs/xsd/fatture/v1.2"
SCHEMA_VERSION = "FPA12"


def _day(value: date | str) -> str:
    return value.isoformat() if isinstance(value, date) else str(value)


def _add(parent: ET.Element, tag: str, text: str | None = None) -> ET.Element:
    element = ET.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _quantity(count: int) -> str:
    return f"{count}.00"


def _address(parent: ET.Element, address: Mapping[str, Any]) -> None:
    sede = _add(parent, "Sede")
    _add(sede, "Indirizzo", address["street"])
    _add(sede, "CAP", address["postcode"])
    _add(sede, "Comune", address["municipality"])
    if address.get("province"):
        _add(sede, "Provincia", address["province"])
    _add(sede, "Nazione", address.get("country") or "IT")


def render_invoice(invoice: Mapping[str, Any]) -> str:
    """`invoice` holds the fields of ContractInvoice.Issued (dates as date or ISO text)."""
    ET.register_namespace("p", NAMESPACE)
    root = ET.Element(f"{{{NAMESPACE}}}FatturaElettronica", {"versione": SCHEMA_VERSION})
    issuer: Mapping[str, Any] = invoice["issuer"]
    customer: Mapping[str, Any] = invoice["customer"]

    header = _add(root, "FatturaElettronicaHeader")
    transmission = _add(header, "DatiTrasmissione")
    sender = _add(transmission, "IdTrasmittente")
    _add(sender, "IdPaese", "IT")
    _add(sender, "IdCodice", issuer.get("tax_code") or issuer["vat_number"])
    # Unique per sender across years: the year, then the invoice's number in the year.
    year = _day(invoice["issued_on"])[:4]
    _add(transmission, "ProgressivoInvio", f"{year}{int(invoice['progressive']):05d}")
    _add(transmission, "FormatoTrasmissione", SCHEMA_VERSION)
    _add(transmission, "CodiceDestinatario", customer["office_code"])

    supplier = _add(header, "CedentePrestatore")
    supplier_data = _add(supplier, "DatiAnagrafici")
    vat_id = _add(supplier_data, "IdFiscaleIVA")
    _add(vat_id, "IdPaese", "IT")
    _add(vat_id, "IdCodice", issuer["vat_number"])
    if issuer.get("tax_code"):
        _add(supplier_data, "CodiceFiscale", issuer["tax_code"])
    _add(_add(supplier_data, "Anagrafica"), "Denominazione", issuer["name"])
    _add(supplier_data, "RegimeFiscale", issuer["tax_regime"])
    _address(supplier, issuer["address"])

    buyer = _add(header, "CessionarioCommittente")
    buyer_data = _add(buyer, "DatiAnagrafici")
    _add(buyer_data, "CodiceFiscale", customer["tax_code"])
    _add(_add(buyer_data, "Anagrafica"), "Denominazione", customer["name"])
    _address(buyer, customer["address"])

    body = _add(root, "FatturaElettronicaBody")
    general = _add(body, "DatiGenerali")
    document = _add(general, "DatiGeneraliDocumento")
    _add(document, "TipoDocumento", "TD01")
    _add(document, "Divisa", "EUR")
    _add(document, "Data", _day(invoice["issued_on"]))
    _add(document, "Numero", invoice["number"])
    # Recorded at issue; invoices issued before stamp duty was built have no such field
    # and none is owed on them, so their documents stay as they were.
    stamp_duty_cents = int(invoice.get("stamp_duty_cents") or 0)
    if stamp_duty_cents:
        # The schema's order: after DatiRitenuta (none here), before ImportoTotaleDocumento.
        stamp = _add(document, "DatiBollo")
        _add(stamp, "BolloVirtuale", "SI")  # paid to the State by the issuer, not stamped
        _add(stamp, "ImportoBollo", format_cents(stamp_duty_cents))
    _add(document, "ImportoTotaleDocumento", format_cents(int(invoice["total_cents"])))
    _add(document, "Causale", f"Servizio di accoglienza, mese {invoice['month']}")
    order = _add(general, "DatiOrdineAcquisto")
    _add(order, "IdDocumento", invoice["agreement_reference"])
    _add(order, "CodiceCIG", invoice["cig"])

    goods = _add(body, "DatiBeniServizi")
    # The month, within the contract's term; the whole month for invoices issued
    # before the term's bounds were kept.
    month_end = last_day_of(str(invoice["month"]))
    first_day = date.fromisoformat(str(invoice.get("period_from") or month_end.replace(day=1)))
    period_end = date.fromisoformat(str(invoice.get("period_to") or month_end))
    rate = format_percent_bp(int(invoice["vat_rate_bp"]))
    vat_nature = invoice.get("vat_nature")

    line = _add(goods, "DettaglioLinee")
    _add(line, "NumeroLinea", "1")
    _add(line, "Descrizione", "Accoglienza: presenze giornaliere (persone x giorni)")
    _add(line, "Quantita", _quantity(int(invoice["presence_days"])))
    _add(line, "UnitaMisura", "gg/pers")
    _add(line, "DataInizioPeriodo", first_day.isoformat())
    _add(line, "DataFinePeriodo", period_end.isoformat())
    _add(line, "PrezzoUnitario", format_cents(int(invoice["daily_rate_cents"])))
    _add(line, "PrezzoTotale", format_cents(int(invoice["net_cents"])))
    _add(line, "AliquotaIVA", rate)
    if vat_nature:
        _add(line, "Natura", vat_nature)

    excluded_by_nature: dict[str, int] = {}
    for number, item in enumerate(invoice["pass_through"], start=2):
        line = _add(goods, "DettaglioLinee")
        _add(line, "NumeroLinea", str(number))
        _add(line, "Descrizione", item["description"])
        _add(line, "Quantita", _quantity(int(item["quantity"])))
        _add(line, "UnitaMisura", "gg/pers")
        _add(line, "PrezzoUnitario", format_cents(int(item["unit_cents"])))
        _add(line, "PrezzoTotale", format_cents(int(item["amount_cents"])))
        _add(line, "AliquotaIVA", "0.00")
        _add(line, "Natura", item["vat_nature"])
        excluded_by_nature[item["vat_nature"]] = excluded_by_nature.get(
            item["vat_nature"], 0
        ) + int(item["amount_cents"])

    summary = _add(goods, "DatiRiepilogo")
    _add(summary, "AliquotaIVA", rate)
    if vat_nature:
        _add(summary, "Natura", vat_nature)
    _add(summary, "ImponibileImporto", format_cents(int(invoice["net_cents"])))
    _add(summary, "Imposta", format_cents(int(invoice["vat_cents"])))
    if invoice["split_payment"] and not vat_nature:
        _add(summary, "EsigibilitaIVA", "S")
        _add(summary, "RiferimentoNormativo", "Scissione dei pagamenti art. 17-ter DPR 633/72")
    for nature, amount_cents in sorted(excluded_by_nature.items()):
        summary = _add(goods, "DatiRiepilogo")
        _add(summary, "AliquotaIVA", "0.00")
        _add(summary, "Natura", nature)
        _add(summary, "ImponibileImporto", format_cents(amount_cents))
        _add(summary, "Imposta", "0.00")
        if nature == "N1":
            _add(summary, "RiferimentoNormativo", "Escluse art. 15 DPR 633/72")

    if issuer.get("iban"):
        payment = _add(body, "DatiPagamento")
        _add(payment, "CondizioniPagamento", "TP02")  # payment in full
        detail = _add(payment, "DettaglioPagamento")
        _add(detail, "ModalitaPagamento", "MP05")  # bank transfer
        _add(detail, "ImportoPagamento", format_cents(int(invoice["payable_cents"])))
        _add(detail, "IBAN", issuer["iban"])

    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
