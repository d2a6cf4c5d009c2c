"""HTTP API of the SMS service: one flask-smorest Blueprint per resource."""
