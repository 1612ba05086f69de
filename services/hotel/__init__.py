"""Hotel context: bookings, folio, VAT, tourist tax, guest reporting. Built by issue #3."""
