"""Hotel read models: bookings, folios, guests, room nights, tourist tax."""
