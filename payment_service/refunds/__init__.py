"""Refunds of paid orders: reserving the amount under the order's row lock (``creating``), the upstream calls
and queries (``sending``), the profit-sharing returns before a split order's refund (``returns``), the one
guarded transition to success or failed (``states``), WeChat's refund notifications (``notifications``),
beat's reconciliation (``reconciliation``), the payment.refund forward (``forwarding``) and what the API shows
(``views``). Money is integer fen throughout; docs/refunds.md is the business's side.
"""
