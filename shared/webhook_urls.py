"""The URL checks of :mod:`shared.webhooks.addresses` under this module name, for callers that import it."""

from shared.webhooks.addresses import MAX_URL_LENGTH, UrlRefused, check_public_url, is_public

__all__ = ["MAX_URL_LENGTH", "UrlRefused", "check_public_url", "is_public"]
