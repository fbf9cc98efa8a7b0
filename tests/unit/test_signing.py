"""hookway.send.signing: Standard Webhooks v1 signatures that any receiver library accepts."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks import Webhook

from hookway.send.signing import sign

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
KEY = base64.b64decode(SECRET.removeprefix("whsec_"))


def reference_sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    when = datetime.fromtimestamp(timestamp, UTC)
    return Webhook(secret).sign(msg_id=msg_id, timestamp=when, data=body.decode())


def test_signature_matches_the_standard_webhooks_reference_example():
    # The specification's test vector, as asserted by the reference Python library's
    # test_sign_function:
    # https://github.com/standard-webhooks/standard-webhooks/blob/main/libraries/python/tests/test_webhooks.py
    signature = sign(KEY, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, b'{"test": 2432232314}')
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


@pytest.mark.parametrize(
    "body",
    [b"", b"{}", b'{ "a" :1,\n\t"b":[ ] }\n', '{"name": "café ☕"}'.encode()],
)
def test_signature_agrees_with_the_standardwebhooks_library(body):
    assert sign(KEY, "msg_1", 1700000000, body) == reference_sign(SECRET, "msg_1", 1700000000, body)


@given(
    key=st.binary(min_size=1, max_size=64),
    msg_id=st.text(st.characters(codec="ascii", exclude_categories=["Cc"]), min_size=1),
    timestamp=st.integers(min_value=0, max_value=2**33),
    body=st.text().map(str.encode),
)
def test_signature_agrees_with_the_standardwebhooks_library_for_any_input(
    key, msg_id, timestamp, body
):
    secret = "whsec_" + base64.b64encode(key).decode()
    assert sign(key, msg_id, timestamp, body) == reference_sign(secret, msg_id, timestamp, body)


def test_the_signature_depends_on_id_timestamp_body_and_key():
    signature = sign(KEY, "msg_1", 1700000000, b"{}")
    assert sign(KEY, "msg_2", 1700000000, b"{}") != signature
    assert sign(KEY, "msg_1", 1700000001, b"{}") != signature
    assert sign(KEY, "msg_1", 1700000000, b"{ }") != signature
    assert sign(b"other key", "msg_1", 1700000000, b"{}") != signature
