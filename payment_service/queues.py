"""Queue names of the payment service; the first is the default. Workers consume all of them."""

NOTIFY = "payment-notify"
PROFIT_SHARING = "payment-profit-sharing"
PERIODIC = "payment-periodic"
# Refunds and their profit-sharing returns move money after a payment, as splits do: the same workers.
REFUNDS = PROFIT_SHARING

ALL = (NOTIFY, PROFIT_SHARING, PERIODIC)
