"""AES-GCM sealing of secrets: bound to their row, named by key id, readable under an old key."""

from __future__ import annotations

import base64

import pytest

from payment_service import create_app
from payment_service.configs.secret_box import SecretBox, SecretUnavailable, key_id_of
from payment_service.settings import decode_old_secret_keys, generate_secret_key, load_config
from shared.settings import ConfigurationError

CURRENT = base64.b64decode(generate_secret_key())
OLD = base64.b64decode(generate_secret_key())


def test_sealed_value_opens_and_does_not_contain_the_plaintext():
    box = SecretBox(CURRENT)
    sealed = box.seal("the-api-v3-key-0123456789abcdefg", context="CFG_1")
    assert sealed.key_id == box.current_key_id == key_id_of(CURRENT)
    assert "the-api-v3-key" not in sealed.token
    assert box.open(sealed, context="CFG_1") == "the-api-v3-key-0123456789abcdefg"


def test_each_seal_uses_a_fresh_nonce():
    box = SecretBox(CURRENT)
    assert box.seal("same", "CFG_1").token != box.seal("same", "CFG_1").token


def test_a_value_copied_to_another_row_does_not_open():
    box = SecretBox(CURRENT)
    sealed = box.seal("secret", context="CFG_1")
    with pytest.raises(SecretUnavailable):
        box.open(sealed, context="CFG_2")


def test_a_tampered_value_does_not_open():
    box = SecretBox(CURRENT)
    sealed = box.seal("secret", context="CFG_1")
    raw = bytearray(base64.b64decode(sealed.token))
    raw[-1] ^= 1
    tampered = type(sealed)(sealed.key_id, base64.b64encode(bytes(raw)).decode())
    with pytest.raises(SecretUnavailable, match="does not authenticate"):
        box.open(tampered, context="CFG_1")


def test_an_old_key_still_opens_but_new_values_use_the_current_key():
    sealed_before = SecretBox(OLD).seal("secret", "CFG_1")
    rotated = SecretBox(CURRENT, [OLD])
    assert rotated.open(sealed_before, "CFG_1") == "secret"
    assert rotated.seal("secret", "CFG_1").key_id == key_id_of(CURRENT)
    assert rotated.key_ids == {key_id_of(CURRENT), key_id_of(OLD)}


def test_a_key_no_longer_configured_is_named_in_the_error():
    sealed_before = SecretBox(OLD).seal("secret", "CFG_1")
    with pytest.raises(SecretUnavailable, match=f"{key_id_of(OLD)}.*PAYMENT_OLD_SECRET_KEYS"):
        SecretBox(CURRENT).open(sealed_before, "CFG_1")


def test_key_ids_are_stable_and_distinct():
    assert key_id_of(CURRENT) == key_id_of(bytes(CURRENT))
    assert key_id_of(CURRENT) != key_id_of(OLD)


@pytest.mark.parametrize("old_keys", ["not base64!", "c2hvcnQ=", generate_secret_key() + ",oops"])
def test_a_bad_old_key_stops_the_service_with_a_clear_message(old_keys):
    with pytest.raises(ConfigurationError, match="PAYMENT_OLD_SECRET_KEYS"):
        create_app({"ENV": "testing", "OLD_SECRET_KEYS": old_keys})


def test_generate_prints_a_key_the_service_accepts(payment_app):
    printed = payment_app.test_cli_runner().invoke(args=["secret-key", "generate"]).output.strip()
    assert len(base64.b64decode(printed, validate=True)) == 32
    old = generate_secret_key()
    settings = load_config({"ENV": "testing", "SECRET_KEY": printed, "OLD_SECRET_KEYS": f" {old} , "})
    assert decode_old_secret_keys(settings["OLD_SECRET_KEYS"]) == [base64.b64decode(old)]
