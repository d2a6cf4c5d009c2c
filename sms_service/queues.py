"""Queue names of the SMS service; the first is the default. Workers consume all of them."""

SEND = "sms-send"
CALLBACKS = "sms-callbacks"
RECEIPTS = "sms-receipts"
PERIODIC = "sms-periodic"

ALL = (SEND, CALLBACKS, RECEIPTS, PERIODIC)
