"""hookway.secrets: resolving secret references, and describing them without showing them."""

from __future__ import annotations

import hashlib

from hookway.secrets import describe, describe_ref, fingerprint, resolve_secret


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
