"""hookway.secrets: resolving secret references, and describing them without showing them."""

from __future__ import annotations

import hashlib

import pytest

from hookway.secrets import (
    UnresolvedSecret,
    describe,
    describe_basic_auth,
    describe_ref,
    fingerprint,
    resolve_basic_auth,
    resolve_secret,
)


def sha8(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:8]


def test_a_fingerprint_is_the_first_8_hex_digits_of_the_sha256():
    assert fingerprint("s3cret") == sha8("s3cret")
    assert len(fingerprint("")) == 8


def test_a_fingerprint_takes_any_string():
    assert len(fingerprint("lone \udfff surrogate")) == 8


def test_a_literal_is_described_by_its_fingerprint_only():
    assert describe_ref("s3cret") == f"set, fingerprint {sha8('s3cret')}"


def test_an_env_reference_is_described_by_name_and_the_fingerprint_of_its_value():
    env = {"GITLAB_TOKEN": "gl-value"}
    assert describe_ref("env:GITLAB_TOKEN", env) == (
        f"env:GITLAB_TOKEN (set, fingerprint {sha8('gl-value')})"
    )


def test_an_unset_env_reference_says_so():
    assert describe_ref("env:MISSING", {}) == "env:MISSING (not set)"
    assert describe_ref("env:EMPTY", {"EMPTY": ""}) == "env:EMPTY (not set)"


def test_a_list_of_secrets_is_counted_and_each_described():
    env = {"GITLAB_TOKEN": "gl-value"}
    assert describe(["lit", "env:GITLAB_TOKEN"], env) == (
        f"2 secrets: set, fingerprint {sha8('lit')}; "
        f"env:GITLAB_TOKEN (set, fingerprint {sha8('gl-value')})"
    )
    assert describe(["lit"], env) == f"1 secret: set, fingerprint {sha8('lit')}"
    assert describe([], env) == "none"


def test_resolve_secret_reads_literals_and_env_references():
    assert resolve_secret("lit", {}) == "lit"
    assert resolve_secret("env:A", {"A": "value"}) == "value"
    assert resolve_secret("env:A", {}) is None


def test_the_config_module_still_offers_resolve_secret():
    from hookway.config.file import resolve_secret as from_config

    assert from_config is resolve_secret


# -- basic auth -----------------------------------------------------------------------------


def test_basic_auth_resolves_each_stored_form():
    env = {"CI_BASIC": "ci:pw:with:colons", "CI_PASSWORD": "pw-env"}
    assert resolve_basic_auth("env:CI_BASIC", env) == ("ci", "pw:with:colons")
    assert resolve_basic_auth("ci:env:CI_PASSWORD", env) == ("ci", "pw-env")
    assert resolve_basic_auth("ci:literal", env) == ("ci", "literal")
    assert resolve_basic_auth("ci:", env) == ("ci", "")


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("env:MISSING", "environment variable MISSING is not set or empty"),
        ("ci:env:MISSING", "environment variable MISSING is not set or empty"),
        ("env:NO_COLON", "environment variable NO_COLON must hold user:password"),
        ("no-colon", "basic auth must be user:password"),
    ],
)
def test_basic_auth_that_cannot_be_resolved_says_why_without_the_value(ref, words):
    with pytest.raises(UnresolvedSecret) as info:
        resolve_basic_auth(ref, {"NO_COLON": "secret-value-without-colon"})
    assert words in str(info.value)
    assert "secret-value" not in str(info.value)


def test_basic_auth_is_described_by_user_and_password_fingerprint():
    env = {"CI_BASIC": "ci:pw", "CI_PASSWORD": "pw-env"}
    assert (
        describe_basic_auth("ci:hunter2", env)
        == f"user ci, password set, fingerprint {sha8('hunter2')}"
    )
    assert describe_basic_auth("ci:env:CI_PASSWORD", env) == (
        f"user ci, password env:CI_PASSWORD (set, fingerprint {sha8('pw-env')})"
    )
    assert describe_basic_auth("env:CI_BASIC", env) == (
        f"env:CI_BASIC (set, fingerprint {sha8('ci:pw')})"
    )
    assert describe_basic_auth("no-colon-secret", env) == (
        f"set, fingerprint {sha8('no-colon-secret')}"
    )
