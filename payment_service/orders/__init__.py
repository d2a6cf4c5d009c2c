"""Payment orders: placing, states, views, notifications, forwarding, profit sharing, reconciliation."""
