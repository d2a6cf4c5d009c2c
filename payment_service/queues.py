"""Queue names of the payment service; the first is the default. Workers consume all of them."""

NOTIFY = "payment-notify"
PROFIT_SHARING = "payment-profit-sharing"
PERIODIC = "payment-periodic"

ALL = (NOTIFY, PROFIT_SHARING, PERIODIC)
