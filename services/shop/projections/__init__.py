"""Shop read models: sessions, documents (sales and refunds), cash movements, intake."""
