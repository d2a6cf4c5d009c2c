"""Code both services share: the response envelope, API-key auth and webhook signing."""
