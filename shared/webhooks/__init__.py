"""Outbound webhooks of both services (SMS results, payment results) by the Standard Webhooks specification.

``signing`` (secrets and headers), ``addresses`` (which URLs may be called), ``schedule`` (when to retry),
``sender`` (one attempt), ``attempts`` (what an attempt did, and the columns that record it) and ``rotation``
(a tenant's current and previous secret). docs/webhooks.md is the receiver's side.
"""

from shared.webhooks.addresses import (
    HostUnresolved,
    UrlRefused,
    check_for_delivery,
    check_public_url,
    is_public,
)
from shared.webhooks.attempts import DELIVERED, GAVE_UP, OUTCOMES, REJECTED, RETRY, Attempt, AttemptColumns
from shared.webhooks.rotation import SigningSecrets, register_rotate_secret_command, signing_secrets_of
from shared.webhooks.schedule import DEFAULT_RETRY_DELAYS, next_retry_delay, parse_retry_delays
from shared.webhooks.sender import WebhookSender, encode_body
from shared.webhooks.signing import (
    ID_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    event_webhook_id,
    generate_secret,
    secret_from_plain,
    sign,
    webhook_headers,
)

__all__ = [
    "DEFAULT_RETRY_DELAYS",
    "DELIVERED",
    "GAVE_UP",
    "ID_HEADER",
    "OUTCOMES",
    "REJECTED",
    "RETRY",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "Attempt",
    "AttemptColumns",
    "HostUnresolved",
    "SigningSecrets",
    "UrlRefused",
    "WebhookSender",
    "check_for_delivery",
    "check_public_url",
    "encode_body",
    "event_webhook_id",
    "generate_secret",
    "is_public",
    "next_retry_delay",
    "parse_retry_delays",
    "register_rotate_secret_command",
    "secret_from_plain",
    "sign",
    "signing_secrets_of",
    "webhook_headers",
]
