"""Replies from mobiles (uplink): stored once per upstream push item, attributed to tenants, listed to them,
and an opt-out keyword opts the mobile out of their marketing."""
