"""HTTP layer of the payment service: blueprints that parse, call the domain and wrap with ok()."""
