"""The analysts' back-office, one module per screen or group of forms; ``dossiers.urls`` maps them."""
