"""Delivering accepted messages: dispatch to the upstreams, transitions, receipts, callbacks, sweeps."""
