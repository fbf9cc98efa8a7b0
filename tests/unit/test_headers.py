"""hookway.headers: which headers a destination may set and forward, and resolving a
destination's extra headers (static, auth, forwarded) at claim time."""

from __future__ import annotations

import pytest

from hookway import headers
from hookway.headers import (
    DestinationHeaders,
    forwarded,
    is_credential_header,
    pattern_problem,
    resolve,
    static_header_problem,
)

# What ingest stores for a GitLab push (credential headers were never stored).
GITLAB_STORED = {
    "Host": "hooks.example.com",
    "Content-Type": "application/json",
    "Content-Length": "1432",
    "User-Agent": "GitLab/17.5.0",
    "Connection": "keep-alive, X-Hop",
    "X-Hop": "per-connection",
    "X-Gitlab-Event": "Push Hook",
    "X-Gitlab-Event-Uuid": "7b1a…",
    "X-Gitlab-Instance": "https://gitlab.example.com",
    "X-Gitlab-Webhook-Uuid": "a9f2",
    "X-Forwarded-For": "203.0.113.9",
    "X-Request-Id": "req-1",
}


# -- which names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    ["Authorization", "X-Gitlab-Token", "X-Hub-Signature-256", "Cookie", "X-API-Key"],
)
def test_credential_headers_are_recognised_by_name(name):
    assert is_credential_header(name)


def test_ingest_uses_the_same_credential_predicate():
    from hookway.ingest import views

    assert views.is_credential_header is headers.is_credential_header


# -- forwarding ------------------------------------------------------------------------


def test_forwarded_headers_match_the_globs_case_insensitively():
    assert forwarded(GITLAB_STORED, ["x-gitlab-*"]) == (
        ("X-Gitlab-Event", "Push Hook"),
        ("X-Gitlab-Event-Uuid", "7b1a…"),
        ("X-Gitlab-Instance", "https://gitlab.example.com"),
        ("X-Gitlab-Webhook-Uuid", "a9f2"),
    )
    assert forwarded(GITLAB_STORED, ["X-GITLAB-EVENT"]) == (("X-Gitlab-Event", "Push Hook"),)


def test_no_patterns_forward_nothing():
    assert forwarded(GITLAB_STORED, []) == ()


def test_forwarding_everything_still_leaves_out_reserved_hop_by_hop_and_arrival_headers():
    names = [name for name, _ in forwarded(GITLAB_STORED, ["*"])]

    assert names == [
        "X-Gitlab-Event",
        "X-Gitlab-Event-Uuid",
        "X-Gitlab-Instance",
        "X-Gitlab-Webhook-Uuid",
        "X-Request-Id",
    ]


def test_credential_headers_are_never_forwarded_even_if_stored():
    # Events stored before a word joined the list could hold one.
    stored = {"X-Gitlab-Token": "glpat-secret", "X-Auth-User": "x", "X-Gitlab-Event": "Push Hook"}

    assert forwarded(stored, ["*"]) == (("X-Gitlab-Event", "Push Hook"),)


def test_a_stored_value_that_cannot_be_sent_is_not_forwarded():
    stored = {"X-Gitlab-Event": "Push\r\nX-Injected: 1", "X-Ok": "fine", "X-Odd": 3}

    assert forwarded(stored, ["X-*"]) == (("X-Ok", "fine"),)


# -- what may be configured ------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("X Team", "ops", "not a valid header name"),
        ("X-Team:", "ops", "not a valid header name"),
        ("", "ops", "not a valid header name"),
        ("X-Team", "ops\r\nX-Evil: 1", "line break"),
        ("X-Team", "ops\x00", "control character"),
        ("Content-Type", "text/plain", "set by Hookway"),
        ("webhook-id", "x", "set by Hookway"),
        ("Webhook-Signature", "x", "set by Hookway"),
        ("X-Hookway-Event", "x", "set by Hookway"),
        ("x-hookway-anything", "x", "set by Hookway"),
        ("Host", "example.com", "set by Hookway"),
        ("Content-Length", "3", "set by Hookway"),
        ("User-Agent", "curl/8", "set by Hookway"),
        ("Transfer-Encoding", "chunked", "one connection"),
        ("Connection", "close", "one connection"),
        ("X-Api-Key", "literal-key", "env:NAME"),
        ("Authorization", "Token abc", "env:NAME"),
        ("X-Team", "env:", "needs a variable name"),
    ],
)
def test_a_static_header_problem_is_named(name, value, words):
    problem = static_header_problem(name, value)
    assert problem is not None
    assert words in problem


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Team", "ops"),
        ("X-Team", "caf\u00e9 \t tab"),
        ("X-Gitlab-Token", "env:CONSUMER_TOKEN"),
        ("Authorization", "env:CUSTOM_AUTH"),
        ("Accept", "application/json"),
    ],
)
def test_good_static_headers_pass(name, value):
    assert static_header_problem(name, value) is None


@pytest.mark.parametrize("pattern", ["X-Gitlab-*", "x-github-?vent", "X-[AB]-*", "*", "Accept"])
def test_good_patterns_pass(pattern):
    assert pattern_problem(pattern) is None


@pytest.mark.parametrize(
    ("pattern", "words"),
    [
        ("X Gitlab *", "not a header name pattern"),
        ("", "not a header name pattern"),
        ("X-Gitlab-Token", "never forwarded: its name says it carries a credential"),
        ("Authorization", "never forwarded"),
        ("Content-Type", "never forwarded: Hookway sets it itself"),
        ("Connection", "never forwarded: it applies to one connection only"),
        ("X-Forwarded-For", "never forwarded: it describes how the request reached Hookway"),
    ],
)
def test_a_pattern_that_can_never_match_is_refused(pattern, words):
    problem = pattern_problem(pattern)
    assert problem is not None
    assert words in problem


# -- resolving at claim time -----------------------------------------------------------


def test_resolve_reads_env_values_and_auth_now():
    env = {"TEAM": "ops", "CI_TOKEN": "tok-1"}

    got = resolve({"X-Team": "env:TEAM", "X-Static": "yes"}, "env:CI_TOKEN", "", [], None, env)

    assert got == DestinationHeaders(
        headers=(("X-Team", "ops"), ("X-Static", "yes")), bearer_token="tok-1"
    )


def test_resolve_reads_basic_auth_in_each_form():
    env = {"CI_BASIC": "ci:pw-from-env", "CI_PASSWORD": "pw-2"}

    assert resolve({}, "", "env:CI_BASIC", [], None, env).basic_auth == ("ci", "pw-from-env")
    assert resolve({}, "", "ci:env:CI_PASSWORD", [], None, env).basic_auth == ("ci", "pw-2")
    assert resolve({}, "", "ci:literal:with:colons", [], None, env).basic_auth == (
        "ci",
        "literal:with:colons",
    )


def test_resolve_forwards_the_stored_headers_matching_the_patterns():
    got = resolve({}, "", "", ["X-Gitlab-Event"], GITLAB_STORED, {})

    assert got.forwarded_headers == (("X-Gitlab-Event", "Push Hook"),)
    assert got.problem == ""


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (({"X-Team": "env:TEAM"}, "", "", []), "headers.X-Team: environment variable TEAM"),
        (({}, "env:CI_TOKEN", "", []), "bearer_token: environment variable CI_TOKEN is not set"),
        (({}, "", "env:CI_BASIC", []), "basic_auth: environment variable CI_BASIC is not set"),
        (({}, "", "ci:env:CI_PASSWORD", []), "basic_auth: environment variable CI_PASSWORD"),
        (({}, "", "env:NO_COLON", []), "basic_auth: environment variable NO_COLON must hold"),
        (({}, "env:BROKEN", "", []), "bearer_token: a bearer token must be non-empty"),
        (({"X-Team": "env:BROKEN"}, "", "", []), "headers.X-Team: the value holds a line break"),
        ((["X-Team"], "", "", []), "headers: expected a JSON object"),
        (({}, "", "", "X-*"), "forward_headers: expected a JSON list"),
    ],
)
def test_resolve_names_the_key_and_variable_it_cannot_resolve(args, problem):
    env = {"NO_COLON": "justauser", "BROKEN": "a\r\nb"}

    got = resolve(*args, None, env)

    assert got.problem.startswith(problem), got.problem
    assert (got.headers, got.bearer_token, got.basic_auth) == ((), None, None)
