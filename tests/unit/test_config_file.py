"""hookway.config.file: parsing and validating hookway.toml (docs/configuration.md)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from hookway.config.file import (
    ConfigError,
    DestinationConfig,
    HookwayConfig,
    RouteConfig,
    SourceConfig,
    load,
    parse,
    resolve_secret,
)
from hookway.models import ONE_MIB

WHSEC = "whsec_" + base64.b64encode(b"k" * 32).decode()

# The example of docs/configuration.md, with a real signing secret.
DOCS_EXAMPLE = f"""
[[sources]]
slug = "gitlab"                    # receives at POST /hooks/gitlab
verify = "gitlab"
secret = "env:GITLAB_TOKEN"
require_event_name = true
max_body_bytes = 1048576
enabled = true

[[destinations]]
name = "ci-bot"
url = "https://ci.example.com/hooks"
signing_secret = "{WHSEC}"
timeout_seconds = 15
max_attempts = 10
concurrency = 20
headers = {{ "X-Team" = "ops", "X-Gitlab-Token" = "env:CI_GITLAB_TOKEN" }}
bearer_token = "env:CI_TOKEN"
# basic_auth = {{ user = "ci", password = "env:CI_PASSWORD" }}
forward_headers = ["X-Gitlab-*"]

[[routes]]
source = "gitlab"
destination = "ci-bot"
events = ["push", "merge_request*"]
"""

ENV = {
    "GITLAB_TOKEN": "gl-secret",
    "OTHER_TOKEN": "other-secret",
    "CI_GITLAB_TOKEN": "ci-gl-secret",
    "CI_TOKEN": "ci-bearer",
}


def parse_error(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, env=ENV if env is None else env)
    return str(info.value)


def source(body: str) -> str:
    return f"[[sources]]\n{body}\n"


def destination(body: str) -> str:
    return f"[[destinations]]\n{body}\n"


GOOD_SOURCE = source('slug = "a"')
GOOD_DESTINATION = destination('name = "d"\nurl = "https://example.com/hook"')


# -- a valid file -------------------------------------------------------------------------


def test_the_documented_example_parses_into_dataclasses():
    config = parse(DOCS_EXAMPLE, env=ENV)

    assert config == HookwayConfig(
        sources=(
            SourceConfig(
                slug="gitlab",
                verify="gitlab",
                secrets=("env:GITLAB_TOKEN",),
                require_event_name=True,
                max_body_bytes=1048576,
                enabled=True,
            ),
        ),
        destinations=(
            DestinationConfig(
                name="ci-bot",
                url="https://ci.example.com/hooks",
                signing_secret=WHSEC,
                timeout_seconds=15.0,
                max_attempts=10,
                concurrency=20,
                enabled=True,
                headers=(("X-Team", "ops"), ("X-Gitlab-Token", "env:CI_GITLAB_TOKEN")),
                bearer_token="env:CI_TOKEN",
                forward_headers=("X-Gitlab-*",),
            ),
        ),
        routes=(
            RouteConfig(source="gitlab", destination="ci-bot", events=("push", "merge_request*")),
        ),
    )
    # Secrets stay references: they are read from the environment at verification time.
    assert config.sources[0].secrets == ("env:GITLAB_TOKEN",)


def test_omitted_keys_take_their_documented_defaults():
    config = parse(
        GOOD_SOURCE + GOOD_DESTINATION + '[[routes]]\nsource = "a"\ndestination = "d"\n', env={}
    )

    (src,) = config.sources
    assert (src.verify, src.secrets, src.require_event_name) == ("none", (), False)
    assert (src.max_body_bytes, src.enabled) == (ONE_MIB, True)
    (dst,) = config.destinations
    assert (dst.signing_secret, dst.timeout_seconds) == ("", 15.0)
    assert (dst.max_attempts, dst.concurrency, dst.enabled) == (10, 20, True)
    (route,) = config.routes
    assert route.events == ()


def test_an_empty_file_is_an_empty_config():
    assert parse("", env={}) == HookwayConfig()


def test_a_timeout_may_be_fractional_and_is_a_float():
    config = parse(destination('name = "d"\nurl = "http://x.test/"\ntimeout_seconds = 2'), env={})
    assert config.destinations[0].timeout_seconds == 2.0
    assert isinstance(config.destinations[0].timeout_seconds, float)
    config = parse(destination('name = "d"\nurl = "http://x.test/"\ntimeout_seconds = 0.5'), env={})
    assert config.destinations[0].timeout_seconds == 0.5


def test_a_secret_may_be_a_string_or_a_list_for_rotation():
    one = parse(source('slug = "a"\nverify = "token"\nsecret = "literal"'), env={})
    assert one.sources[0].secrets == ("literal",)

    several = parse(
        source('slug = "a"\nverify = "token"\nsecret = ["env:GITLAB_TOKEN", "env:OTHER_TOKEN"]'),
        env=ENV,
    )
    assert several.sources[0].secrets == ("env:GITLAB_TOKEN", "env:OTHER_TOKEN")


def test_a_standard_webhooks_secret_may_come_from_the_environment():
    config = parse(
        source('slug = "a"\nverify = "standard-webhooks"\nsecret = "env:SW"'), env={"SW": WHSEC}
    )
    assert config.sources[0].secrets == ("env:SW",)


def test_slugs_may_use_digits_dashes_and_underscores_up_to_63_characters():
    slug = "a1-b_" + "c" * 58
    assert len(slug) == 63
    assert parse(source(f'slug = "{slug}"'), env={}).sources[0].slug == slug


def test_parse_reads_the_process_environment_when_no_env_is_given(monkeypatch):
    monkeypatch.setenv("HOOKWAY_TEST_TOKEN", "from-os-environ")
    config = parse(source('slug = "a"\nverify = "token"\nsecret = "env:HOOKWAY_TEST_TOKEN"'))
    assert config.sources[0].secrets == ("env:HOOKWAY_TEST_TOKEN",)

    monkeypatch.delenv("HOOKWAY_TEST_TOKEN")
    with pytest.raises(ConfigError, match="HOOKWAY_TEST_TOKEN is not set"):
        parse(source('slug = "a"\nverify = "token"\nsecret = "env:HOOKWAY_TEST_TOKEN"'))


# -- resolve_secret -----------------------------------------------------------------------


def test_resolve_secret_returns_a_literal_as_is():
    assert resolve_secret("s3cret", env={}) == "s3cret"


def test_resolve_secret_reads_env_references():
    assert resolve_secret("env:GITLAB_TOKEN", env=ENV) == "gl-secret"


def test_resolve_secret_is_none_for_an_unset_or_empty_variable():
    assert resolve_secret("env:MISSING", env=ENV) is None
    assert resolve_secret("env:EMPTY", env={"EMPTY": ""}) is None


def test_resolve_secret_defaults_to_the_process_environment(monkeypatch):
    monkeypatch.setenv("HOOKWAY_TEST_SECRET", "xyz")
    assert resolve_secret("env:HOOKWAY_TEST_SECRET") == "xyz"


# -- file-level errors --------------------------------------------------------------------


def test_invalid_toml_is_reported_with_the_file_name():
    with pytest.raises(ConfigError) as info:
        parse('[[sources]\nslug = "a"', name="conf/hookway.toml", env={})
    assert str(info.value).startswith("conf/hookway.toml: not valid TOML:")


def test_an_unknown_top_level_key_is_named():
    message = parse_error(GOOD_SOURCE + '[[sinks]]\nname = "x"\n')
    assert "unknown top-level key 'sinks'" in message
    assert "[[sources]], [[destinations]], [[routes]]" in message


def test_a_section_that_is_not_an_array_of_tables_is_an_error():
    message = parse_error('[sources]\nslug = "a"\n')
    assert "sources must be an array of tables ([[sources]])" in message


def test_an_entry_that_is_not_a_table_is_an_error():
    assert "sources[0]: expected a table" in parse_error('sources = ["gitlab"]\n')


def test_load_reports_an_unreadable_file(tmp_path: Path):
    missing = tmp_path / "nope.toml"
    with pytest.raises(ConfigError, match=r"nope\.toml: can't read"):
        load(missing, env={})


def test_load_names_the_file_in_validation_errors(tmp_path: Path):
    path = tmp_path / "hookway.toml"
    path.write_text(source('slug = "a"\nverify = "nope"'))
    with pytest.raises(ConfigError) as info:
        load(path, env={})
    assert str(info.value).startswith(f"{path}: sources[0].verify:")


# -- sources ------------------------------------------------------------------------------


def test_an_unknown_key_in_a_source_is_named_with_the_allowed_keys():
    message = parse_error(GOOD_SOURCE + source('slug = "b"\nsecrets = ["x"]'))
    assert "sources[1]: unknown key 'secrets'" in message
    assert "allowed: enabled, max_body_bytes, require_event_name, secret, slug, verify" in message


def test_a_source_without_a_slug_is_an_error():
    assert "sources[0].slug: required" in parse_error(source('verify = "none"'))


@pytest.mark.parametrize(
    "slug",
    ["GitLab", "git lab", "git.lab", "-gitlab", "", "a" * 64, "gitlab\n", "gitläb"],
)
def test_a_slug_with_characters_outside_the_rule_is_an_error(slug: str):
    escaped = slug.replace("\n", "\\n")
    message = parse_error(source(f'slug = "{escaped}"'))
    assert f"sources[0].slug: {slug!r} must be 1-63 lowercase letters, digits" in message


def test_a_slug_that_is_not_a_string_is_an_error():
    assert "sources[0].slug: expected a string, got 42" in parse_error(source("slug = 42"))


def test_an_unknown_verify_scheme_is_named_with_the_known_ones():
    message = parse_error(GOOD_SOURCE + source('slug = "b"\nverify = "hmac"\nsecret = "x"'))
    assert "sources[1].verify: 'hmac' is not one of" in message
    for scheme in ("github", "gitlab", "hmac-sha256", "none", "standard-webhooks", "stripe"):
        assert scheme in message


@pytest.mark.parametrize("secret", [None, "[]"])
def test_verification_without_a_secret_is_an_error(secret: str | None):
    body = 'slug = "a"\nverify = "github"' + (f"\nsecret = {secret}" if secret else "")
    assert "sources[0].secret: verify = 'github' needs a secret" in parse_error(source(body))


@pytest.mark.parametrize("secret", ['""', '["ok", ""]', "42", '["ok", 1]'])
def test_a_secret_must_be_non_empty_strings(secret: str):
    message = parse_error(source(f'slug = "a"\nverify = "token"\nsecret = {secret}'))
    assert "sources[0].secret: expected a string or a list of strings" in message


def test_an_env_secret_whose_variable_is_not_set_is_an_error():
    message = parse_error(source('slug = "a"\nverify = "token"\nsecret = ["lit", "env:NOPE"]'))
    assert "sources[0].secret: environment variable NOPE is not set or empty" in message


def test_an_env_secret_whose_variable_is_empty_is_an_error():
    message = parse_error(
        source('slug = "a"\nverify = "token"\nsecret = "env:EMPTY"'), env={"EMPTY": ""}
    )
    assert "environment variable EMPTY is not set or empty" in message


def test_env_without_a_variable_name_is_an_error():
    message = parse_error(source('slug = "a"\nverify = "token"\nsecret = "env:"'))
    assert "sources[0].secret: 'env:' needs a variable name" in message


@pytest.mark.parametrize(
    "secret",
    [
        '"not-whsec"',
        '"whsec_!!!notbase64"',
        '"whsec_"',
        '"a2tra2tra2tra2tra2tra2tr"',  # base64 without the prefix
        f'["{WHSEC}", "bad!"]',
    ],
)
def test_a_standard_webhooks_secret_must_be_whsec_base64(secret: str):
    message = parse_error(source(f'slug = "a"\nverify = "standard-webhooks"\nsecret = {secret}'))
    assert "sources[0].secret: a standard-webhooks secret must be 'whsec_' + base64" in message


def test_a_standard_webhooks_secret_from_the_environment_is_checked_too():
    message = parse_error(
        source('slug = "a"\nverify = "standard-webhooks"\nsecret = "env:SW"'), env={"SW": "plain"}
    )
    assert "a standard-webhooks secret must be 'whsec_' + base64" in message


@pytest.mark.parametrize("value", ["0", f"{64 * ONE_MIB + 1}", "-1", "1.5", '"1MiB"', "true"])
def test_max_body_bytes_must_be_a_whole_number_from_1_to_64_mib(value: str):
    message = parse_error(source(f'slug = "a"\nmax_body_bytes = {value}'))
    assert f"sources[0].max_body_bytes: expected a whole number from 1 to {64 * ONE_MIB}" in message


@pytest.mark.parametrize("key", ["require_event_name", "enabled"])
def test_flags_must_be_booleans(key: str):
    message = parse_error(source(f'slug = "a"\n{key} = "yes"'))
    assert f"sources[0].{key}: expected true or false, got 'yes'" in message


def test_a_source_defined_twice_is_an_error():
    message = parse_error(GOOD_SOURCE + GOOD_SOURCE)
    assert "source 'a' is defined twice" in message


# -- destinations -------------------------------------------------------------------------


def test_an_unknown_key_in_a_destination_is_named():
    message = parse_error(destination('name = "d"\nurl = "https://x.test/"\nretries = 3'))
    assert "destinations[0]: unknown key 'retries'" in message


@pytest.mark.parametrize(
    ("missing", "expected"),
    [
        ("name", "destinations[1].name: required"),
        ("url", "destinations[1]: set exactly one of url, handler, celery_task (none of them"),
    ],
)
def test_a_destination_without_a_name_or_url_is_an_error(missing: str, expected: str):
    lines = {"name": 'name = "d"', "url": 'url = "https://x.test/"'}
    del lines[missing]
    message = parse_error(GOOD_DESTINATION + destination("\n".join(lines.values())))
    assert expected in message


def test_a_destination_name_follows_the_slug_rule():
    message = parse_error(destination('name = "CI Bot"\nurl = "https://x.test/"'))
    assert "destinations[0].name: 'CI Bot' must be 1-63 lowercase letters" in message


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/hook",
        "example.com/hook",
        "/hooks",
        "https://",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "http://[::1",
    ],
)
def test_a_destination_url_must_be_absolute_http_or_https(url: str):
    message = parse_error(destination(f'name = "d"\nurl = "{url}"'))
    assert f"destinations[0].url: {url!r} must be an absolute http:// or https:// URL" in message


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080/h", "https://[::1]/h", "HTTPS://X.TEST"])
def test_http_and_https_urls_are_accepted(url: str):
    assert parse(destination(f'name = "d"\nurl = "{url}"'), env={}).destinations[0].url == url


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://x.test:99999/h", "port 99999 is out of range (1-65535)"),
        ("https://x.test:65536/h", "port 65536 is out of range (1-65535)"),
        ("http://x.test:0/h", "port 0 is out of range (1-65535)"),
        ("https://[::1]:70000/h", "port 70000 is out of range (1-65535)"),
        ("https://user:pw@x.test:123456/h", "port 123456 is out of range (1-65535)"),
        ("https://x.test:http/h", "port 'http' is not a number"),
        ("https://x.test:+80/h", "port '+80' is not a number"),
        ("https://x.test:8_0/h", "port '8_0' is not a number"),
        ("https://x.test:٨٠/h", "port '٨٠' is not a number"),
    ],
)
def test_a_destination_url_port_must_be_a_number_from_1_to_65535(url: str, problem: str):
    message = parse_error(destination(f'name = "d"\nurl = "{url}"'))
    assert f"destinations[0].url: {problem}" in message


@pytest.mark.parametrize(
    "url",
    ["https://x.test:1/h", "https://x.test:65535/h", "https://[::1]:8443/h", "http://x.test:/h"],
)
def test_a_destination_url_port_in_range_is_accepted(url: str):
    assert parse(destination(f'name = "d"\nurl = "{url}"'), env={}).destinations[0].url == url


@pytest.mark.parametrize("secret", ["x", "whsec_!!", "a2tra2tra2tra2tra2tra2tr"])
def test_a_signing_secret_must_be_whsec_base64(secret: str):
    message = parse_error(
        destination(f'name = "d"\nurl = "https://x.test/"\nsigning_secret = "{secret}"')
    )
    assert "destinations[0].signing_secret: expected 'whsec_' + base64" in message


def test_a_destination_url_must_fit_its_column():
    url = "https://x.test/" + "a" * 2000
    message = parse_error(destination(f'name = "d"\nurl = "{url}"'))
    assert "destinations[0].url: longer than 2000 characters" in message


def test_a_signing_secret_may_be_an_env_reference_which_must_be_set():
    text = destination('name = "d"\nurl = "https://x.test/"\nsigning_secret = "env:SIGN"')
    assert parse(text, env={"SIGN": WHSEC}).destinations[0].signing_secret == "env:SIGN"
    message = parse_error(text, env={})
    assert "destinations[0].signing_secret: environment variable SIGN is not set" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("max_attempts = 0", "destinations[0].max_attempts: expected a whole number from 1 to 100"),
        ("max_attempts = 101", "destinations[0].max_attempts: expected a whole number from 1 to"),
        ("max_attempts = 2.5", "destinations[0].max_attempts: expected a whole number"),
        ('timeout_seconds = "fast"', "destinations[0].timeout_seconds: expected a number, got"),
        ("timeout_seconds = 0", "destinations[0].timeout_seconds: expected 0.1 to 600, got 0"),
        ("timeout_seconds = 601", "destinations[0].timeout_seconds: expected 0.1 to 600"),
        ("timeout_seconds = nan", "destinations[0].timeout_seconds: expected 0.1 to 600"),
        ("timeout_seconds = inf", "destinations[0].timeout_seconds: expected 0.1 to 600"),
        ("timeout_seconds = true", "destinations[0].timeout_seconds: expected a number"),
        ("concurrency = true", "destinations[0].concurrency: expected a whole number from 1 to"),
        ("concurrency = 0", "destinations[0].concurrency: expected a whole number from 1 to"),
        ('enabled = "no"', "destinations[0].enabled: expected true or false"),
    ],
)
def test_numbers_out_of_range_or_of_the_wrong_type_are_errors(line: str, expected: str):
    message = parse_error(destination(f'name = "d"\nurl = "https://x.test/"\n{line}'))
    assert expected in message


def test_the_wrong_type_is_quoted_in_the_message():
    message = parse_error(destination('name = "d"\nurl = "https://x.test/"\nconcurrency = true'))
    assert message.endswith("got True")


def test_a_destination_defined_twice_is_an_error():
    message = parse_error(GOOD_DESTINATION + GOOD_DESTINATION)
    assert "destination 'd' is defined twice" in message


# -- destination headers and auth ---------------------------------------------------------

AUTH_ENV = {
    "CI_TOKEN": "tok-123",
    "CI_PASSWORD": "pw-456",
    "CI_BASIC": "ci:pw-789",
    "CONSUMER_TOKEN": "gl-consumer",
}


def dest_with(lines: str) -> str:
    return destination(f'name = "d"\nurl = "https://x.test/"\n{lines}')


def test_the_documented_headers_and_auth_keys_parse():
    config = parse(
        dest_with(
            'headers = { "X-Team" = "ops", "X-Gitlab-Token" = "env:CONSUMER_TOKEN" }\n'
            'bearer_token = "env:CI_TOKEN"\n'
            'forward_headers = ["X-Gitlab-*", "X-Request-Id"]'
        ),
        env=AUTH_ENV,
    )

    (d,) = config.destinations
    assert d.headers == (("X-Team", "ops"), ("X-Gitlab-Token", "env:CONSUMER_TOKEN"))
    # References stay references: they are read when sending.
    assert d.bearer_token == "env:CI_TOKEN"
    assert d.basic_auth == ""
    assert d.forward_headers == ("X-Gitlab-*", "X-Request-Id")


def test_headers_and_auth_default_to_none():
    (d,) = parse(GOOD_DESTINATION, env={}).destinations
    assert (d.headers, d.bearer_token, d.basic_auth, d.forward_headers) == ((), "", "", ())


@pytest.mark.parametrize(
    ("line", "stored"),
    [
        ('basic_auth = { user = "ci", password = "env:CI_PASSWORD" }', "ci:env:CI_PASSWORD"),
        ('basic_auth = { user = "ci", password = "literal-pw" }', "ci:literal-pw"),
        ('basic_auth = "env:CI_BASIC"', "env:CI_BASIC"),
        ('basic_auth = "ci:literal-pw"', "ci:literal-pw"),
    ],
)
def test_basic_auth_is_a_user_and_password_table_or_a_string(line: str, stored: str):
    assert parse(dest_with(line), env=AUTH_ENV).destinations[0].basic_auth == stored


def test_a_single_forward_pattern_may_be_a_string():
    config = parse(dest_with('forward_headers = "X-Gitlab-*"'), env={})
    assert config.destinations[0].forward_headers == ("X-Gitlab-*",)


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        ('headers = "X-Team: ops"', "destinations[0].headers: expected a table of header names"),
        ('headers = { "X-Team" = 1 }', "destinations[0].headers.X-Team: expected a string"),
        ('headers = { "X Team" = "ops" }', "destinations[0].headers['X Team']: 'X Team' is not a"),
        (
            'headers = { "X-Team" = "ops\\r\\nX-Evil: 1" }',
            "destinations[0].headers.X-Team: the value holds a line break",
        ),
        (
            'headers = { "Content-Type" = "text/plain" }',
            "destinations[0].headers.Content-Type: Content-Type is set by Hookway itself",
        ),
        (
            'headers = { "X-Hookway-Source" = "x" }',
            "destinations[0].headers.X-Hookway-Source: X-Hookway-Source is set by Hookway",
        ),
        (
            'headers = { "webhook-id" = "x" }',
            "destinations[0].headers.webhook-id: webhook-id is set by Hookway",
        ),
        (
            'headers = { "Transfer-Encoding" = "chunked" }',
            "destinations[0].headers.Transfer-Encoding: Transfer-Encoding applies to one",
        ),
        (
            'headers = { "X-Api-Key" = "literal-key" }',
            "destinations[0].headers.X-Api-Key: X-Api-Key looks like a credential: give its "
            "value as 'env:NAME'",
        ),
        (
            'headers = { "X-Team" = "env:NO_SUCH" }',
            "destinations[0].headers.X-Team: environment variable NO_SUCH is not set",
        ),
        (
            'headers = { "X-Team" = "env:BROKEN" }',
            "destinations[0].headers.X-Team: environment variable BROKEN: the value holds",
        ),
        (
            'headers = { "X-Team" = "a", "x-team" = "b" }',
            "destinations[0].headers.x-team: given twice (header names ignore case)",
        ),
        ("bearer_token = 5", "destinations[0].bearer_token: expected a string"),
        (
            'bearer_token = "env:NO_SUCH"',
            "destinations[0].bearer_token: environment variable NO_SUCH is not set",
        ),
        ('bearer_token = "env:"', "destinations[0].bearer_token: 'env:' needs a variable name"),
        (
            'bearer_token = "two words"',
            "destinations[0].bearer_token: a bearer token must be non-empty, without spaces",
        ),
        (
            'bearer_token = "env:BROKEN"',
            "destinations[0].bearer_token: a bearer token must be non-empty",
        ),
        (
            'basic_auth = "no-colon"',
            "destinations[0].basic_auth: expected { user = ",
        ),
        (
            'basic_auth = ":pw"',
            "destinations[0].basic_auth: expected { user = ",
        ),
        (
            'basic_auth = "env:CI_TOKEN"',
            "destinations[0].basic_auth: environment variable CI_TOKEN must hold user:password",
        ),
        (
            'basic_auth = "env:NO_SUCH"',
            "destinations[0].basic_auth: environment variable NO_SUCH is not set",
        ),
        (
            'basic_auth = "ci:env:NO_SUCH"',
            "destinations[0].basic_auth: environment variable NO_SUCH is not set",
        ),
        ("basic_auth = 3", "destinations[0].basic_auth: expected { user = "),
        (
            'basic_auth = { user = "ci" }',
            "destinations[0].basic_auth.password: required",
        ),
        (
            'basic_auth = { user = "ci", password = "pw", realm = "x" }',
            "destinations[0].basic_auth: unknown key 'realm'",
        ),
        (
            'basic_auth = { user = "c:i", password = "pw" }',
            "destinations[0].basic_auth.user: 'c:i' must be non-empty, without ':'",
        ),
        (
            'basic_auth = { user = "ci", password = "" }',
            "destinations[0].basic_auth.password: must not be empty",
        ),
        (
            'basic_auth = { user = "ci", password = "env:NO_SUCH" }',
            "destinations[0].basic_auth.password: environment variable NO_SUCH is not set",
        ),
        (
            'bearer_token = "env:CI_TOKEN"\nbasic_auth = "env:CI_BASIC"',
            "destinations[0].basic_auth: set bearer_token or basic_auth, not both",
        ),
        (
            'bearer_token = "env:CI_TOKEN"\nheaders = { "Authorization" = "env:CI_TOKEN" }',
            "destinations[0].headers.Authorization: bearer_token sets Authorization already",
        ),
        (
            'basic_auth = "env:CI_BASIC"\nheaders = { "authorization" = "env:CI_TOKEN" }',
            "destinations[0].headers.authorization: basic_auth sets Authorization already",
        ),
        (
            'forward_headers = ["X-Gitlab-*", "X-Gitlab-Token"]',
            "destinations[0].forward_headers[1]: X-Gitlab-Token is never forwarded: its name",
        ),
        (
            'forward_headers = ["Host"]',
            "destinations[0].forward_headers[0]: Host is never forwarded: Hookway sets it",
        ),
        (
            'forward_headers = ["X Gitlab"]',
            "destinations[0].forward_headers[0]: 'X Gitlab' is not a header name pattern",
        ),
        ('forward_headers = [""]', "destinations[0].forward_headers: expected a string or a list"),
    ],
)
def test_bad_headers_and_auth_are_named_by_key(lines: str, expected: str):
    message = parse_error(dest_with(lines), env={**AUTH_ENV, "BROKEN": "a\nb"})
    assert expected in message


def test_credentials_in_the_url_and_an_auth_key_together_are_an_error():
    text = destination('name = "d"\nurl = "https://bot:pw@x.test/"\nbearer_token = "env:CI_TOKEN"')
    message = parse_error(text, env=AUTH_ENV)
    assert "destinations[0].url: carries user:password@ and bearer_token sets" in message
    # Alone, credentials in the URL are still sent as Basic auth.
    assert parse(destination('name = "d"\nurl = "https://bot:pw@x.test/"'), env={})


def test_auth_values_must_fit_their_columns():
    message = parse_error(dest_with(f'bearer_token = "{"t" * 501}"'), env={})
    assert "destinations[0].bearer_token: longer than 500 characters" in message
    message = parse_error(dest_with(f'basic_auth = "ci:{"p" * 500}"'), env={})
    assert "destinations[0].basic_auth: longer than 500 characters" in message


# -- routes -------------------------------------------------------------------------------


def routes(*bodies: str) -> str:
    return GOOD_SOURCE + GOOD_DESTINATION + "".join(f"[[routes]]\n{b}\n" for b in bodies)


def test_a_route_event_list_may_be_a_single_pattern():
    config = parse(routes('source = "a"\ndestination = "d"\nevents = "push*"'), env={})
    assert config.routes[0].events == ("push*",)


@pytest.mark.parametrize("missing", ["source", "destination"])
def test_a_route_without_a_source_or_destination_is_an_error(missing: str):
    lines = {"source": 'source = "a"', "destination": 'destination = "d"'}
    del lines[missing]
    assert f"routes[0].{missing}: required" in parse_error(routes("\n".join(lines.values())))


def test_a_route_naming_an_unknown_source_is_an_error():
    message = parse_error(
        routes('source = "a"\ndestination = "d"', 'source = "gitlab"\ndestination = "d"')
    )
    assert "routes[1].source: no source 'gitlab' in this file" in message


def test_a_route_naming_an_unknown_destination_is_an_error():
    message = parse_error(routes('source = "a"\ndestination = "ci-bot"'))
    assert "routes[0].destination: no destination 'ci-bot' in this file" in message


def test_a_route_defined_twice_is_an_error():
    message = parse_error(
        routes('source = "a"\ndestination = "d"', 'source = "a"\ndestination = "d"\nevents = ["x"]')
    )
    assert "route 'a -> d' is defined twice" in message


def test_an_unknown_key_in_a_route_is_named():
    message = parse_error(routes('source = "a"\ndestination = "d"\nevent = ["push"]'))
    assert "routes[0]: unknown key 'event'" in message


@pytest.mark.parametrize("events", ["[1]", '[""]', "true"])
def test_route_events_must_be_non_empty_strings(events: str):
    message = parse_error(routes(f'source = "a"\ndestination = "d"\nevents = {events}'))
    assert "routes[0].events: expected a string or a list of strings" in message


# -- handler and Celery destinations (docs/handlers.md) ---------------------------------


def test_a_handler_destination_needs_no_url():
    config = parse(destination('name = "h"\nhandler = "tests.handler_funcs:on_push"'))
    [d] = config.destinations
    assert (d.url, d.handler, d.celery_task) == ("", "tests.handler_funcs:on_push", "")


def test_a_celery_destination_names_its_task():
    config = parse(destination('name = "c"\ncelery_task = "myapp.tasks.process_hook"'))
    [d] = config.destinations
    assert (d.url, d.handler, d.celery_task) == ("", "", "myapp.tasks.process_hook")


@pytest.mark.parametrize(
    "keys",
    [
        'url = "https://x.test/"\nhandler = "tests.handler_funcs:on_push"',
        'handler = "tests.handler_funcs:on_push"\ncelery_task = "t.x"',
    ],
)
def test_a_destination_sets_exactly_one_kind(keys: str):
    message = parse_error(destination(f'name = "d"\n{keys}'))
    assert "destinations[0]: set exactly one of url, handler, celery_task" in message


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("tests.handler_funcs:nope", "tests.handler_funcs has no attribute 'nope'"),
        ("tests.no_such_module:fn", "can't import tests.no_such_module"),
        ("tests.handler_funcs:not_callable", "not_callable is not callable"),
        ("tests.handler_funcs.on_push", "expected 'module:attribute'"),
    ],
)
def test_a_handler_that_cannot_be_imported_is_named(target: str, expected: str):
    message = parse_error(destination(f'name = "h"\nhandler = "{target}"'))
    assert f"destinations[0].handler: handler {target!r}" in message
    assert expected in message


def test_http_only_keys_are_refused_on_a_handler():
    message = parse_error(
        destination('name = "h"\nhandler = "tests.handler_funcs:on_push"\nbearer_token = "t"')
    )
    assert "destinations[0].bearer_token: only for url destinations" in message


def test_a_celery_destination_without_celery_installed_is_refused(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "celery" else real(name, *a)
    )
    message = parse_error(destination('name = "c"\ncelery_task = "myapp.tasks.process_hook"'))
    assert "destinations[0].celery_task: Celery is not installed" in message
    assert "hookway[celery]" in message
