"""The payment configuration center: configs, params by mode, secrets at rest, history, site bindings."""
