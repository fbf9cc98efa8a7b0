import pytest
from django.core.exceptions import ImproperlyConfigured

from hookway import conf

KEY = {"SECRET_KEY": "a-test-key-that-is-long-enough-to-look-like-a-real-one-0123456789"}


def test_defaults_use_sqlite_under_var_and_embedded_dispatcher():
    settings = conf.load(KEY)
    assert settings.database_url.startswith("sqlite:///")
    assert settings.database_url.endswith("/var/hookway.sqlite3")
    assert settings.embedded_dispatcher is True
    assert settings.allow_private_destinations is False
    assert settings.retry_schedule == conf.DEFAULT_RETRY_SCHEDULE
    assert (settings.retention_days, settings.dead_retention_days) == (30, 90)


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"HOOKWAY_CONFIG": "/no/such/file.toml"}, "HOOKWAY_CONFIG"),
        ({"HOOKWAY_EMBEDDED_DISPATCHER": "sometimes"}, "HOOKWAY_EMBEDDED_DISPATCHER"),
        ({"HOOKWAY_RETRY_SCHEDULE": "0,five"}, "HOOKWAY_RETRY_SCHEDULE"),
        ({"HOOKWAY_RETENTION_DAYS": "-1"}, "HOOKWAY_RETENTION_DAYS"),
        ({"HOOKWAY_RETENTION_DAYS": "30d"}, "HOOKWAY_RETENTION_DAYS"),
        ({"HOOKWAY_DEAD_RETENTION_DAYS": "x"}, "HOOKWAY_DEAD_RETENTION_DAYS"),
        ({"HOOKWAY_PRUNE_BATCH": "0"}, "HOOKWAY_PRUNE_BATCH"),
        ({"HOOKWAY_PRUNE_BATCH": "10001"}, "HOOKWAY_PRUNE_BATCH"),
        ({"HOOKWAY_PRUNE_INTERVAL": "0"}, "HOOKWAY_PRUNE_INTERVAL"),
        ({"HOOKWAY_RETRY_SCHEDULE": "0,-1"}, "HOOKWAY_RETRY_SCHEDULE"),
        ({"HOOKWAY_DB_TIMEOUT": "soon"}, "HOOKWAY_DB_TIMEOUT"),
        ({"HOOKWAY_DISPATCHER_CONCURRENCY": "0"}, "HOOKWAY_DISPATCHER_CONCURRENCY"),
        ({"HOOKWAY_LOG_LEVEL": "LOUD"}, "HOOKWAY_LOG_LEVEL"),
        ({"HOOKWAY_DEMO": "perhaps"}, "HOOKWAY_DEMO"),
        ({"HOOKWAY_GC_GEN0_THRESHOLD": "-1"}, "HOOKWAY_GC_GEN0_THRESHOLD"),
        ({"HOOKWAY_GC_GEN0_THRESHOLD": "lots"}, "HOOKWAY_GC_GEN0_THRESHOLD"),
        ({"HOOKWAY_GC_GEN0_THRESHOLD": "1000001"}, "HOOKWAY_GC_GEN0_THRESHOLD"),
        ({"HOOKWAY_GC_GEN0_THRESHOLD": str(2**31)}, "HOOKWAY_GC_GEN0_THRESHOLD"),
    ],
)
def test_a_bad_value_names_the_variable(env, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        conf.load(env)


def test_values_are_parsed():
    settings = conf.load(
        {
            "DEBUG": "yes",
            "ALLOWED_HOSTS": "a.example, b.example",
            "HOOKWAY_RETRY_SCHEDULE": "0, 0.5,1",
            "DATABASE_URL": "postgres://u@h:5432/db",
            "HOOKWAY_EMBEDDED_DISPATCHER": "off",
        }
    )
    assert settings.debug is True
    assert settings.allowed_hosts == ["a.example", "b.example"]
    assert settings.retry_schedule == (0.0, 0.5, 1.0)
    assert settings.embedded_dispatcher is False


@pytest.mark.parametrize(("value", "threshold"), [(None, 2000), ("0", 0), ("20000", 20000)])
def test_the_collector_threshold_defaults_to_2000_and_0_leaves_it_alone(value, threshold):
    env = dict(KEY) if value is None else {**KEY, "HOOKWAY_GC_GEN0_THRESHOLD": value}
    assert conf.load(env).gc_gen0_threshold == threshold


def test_settings_configure_the_database_from_database_url():
    from django.conf import settings

    db = settings.DATABASES["default"]
    if db["ENGINE"] == "django.db.backends.sqlite3":
        assert db["OPTIONS"]["transaction_mode"] == "IMMEDIATE"
        assert "journal_mode=WAL" in db["OPTIONS"]["init_command"]
        assert "synchronous=FULL" in db["OPTIONS"]["init_command"]
    else:
        assert db["ENGINE"] == "django.db.backends.postgresql"
        assert db["OPTIONS"]["pool"]["max_size"] >= 1
        assert "statement_timeout" in db["OPTIONS"]["options"]


# -- SECRET_KEY ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", [{}, {"SECRET_KEY": ""}, {"SECRET_KEY": "   "}, {"DEBUG": "off"}])
def test_without_a_secret_key_hookway_refuses_to_start(env):
    with pytest.raises(ImproperlyConfigured) as refused:
        conf.load(env)
    message = str(refused.value)
    assert message.startswith("SECRET_KEY: must be set")
    assert "python3 -c 'import secrets; print(secrets.token_urlsafe(50))'" in message
    assert "docs/deploy.md" not in message


def test_hookway_require_secret_key_is_no_longer_needed_or_read():
    with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
        conf.load({"HOOKWAY_REQUIRE_SECRET_KEY": "false"})


def test_a_secret_key_from_the_environment_is_used():
    settings = conf.load(KEY)
    assert settings.secret_key == KEY["SECRET_KEY"]
    assert settings.demo is False


def test_debug_allows_the_development_key():
    settings = conf.load({"DEBUG": "true"})
    assert settings.secret_key == conf.DEVELOPMENT_SECRET_KEY


def test_demo_mode_allows_the_development_key():
    settings = conf.load({"HOOKWAY_DEMO": "true"})
    assert settings.secret_key == conf.DEVELOPMENT_SECRET_KEY
    assert settings.demo is True


def test_demo_mode_keeps_a_secret_key_that_is_set():
    settings = conf.load({**KEY, "HOOKWAY_DEMO": "true"})
    assert settings.secret_key == KEY["SECRET_KEY"]


# -- behind a TLS proxy ---------------------------------------------------------------------


def test_proxy_settings_default_to_trusting_no_header_and_no_origin():
    settings = conf.load(KEY)
    assert settings.csrf_trusted_origins == []
    assert settings.trust_x_forwarded_proto is False
    assert settings.secure_cookies is False
    # uvicorn's and gunicorn's own default: a proxy on this machine.
    assert settings.forwarded_allow_ips == ["127.0.0.1", "::1"]


def test_proxy_settings_are_parsed():
    settings = conf.load(
        {
            **KEY,
            "CSRF_TRUSTED_ORIGINS": "https://hooks.example.com, https://*.example.org:8443,"
            "http://[::1]:8000",
            "HOOKWAY_TRUST_X_FORWARDED_PROTO": "true",
            "FORWARDED_ALLOW_IPS": "10.0.0.5, 10.1.0.0/16,fd00::/8",
            "HOOKWAY_SECURE_COOKIES": "yes",
        }
    )
    assert settings.csrf_trusted_origins == [
        "https://hooks.example.com",
        "https://*.example.org:8443",
        "http://[::1]:8000",
    ]
    assert settings.trust_x_forwarded_proto is True
    assert settings.forwarded_allow_ips == ["10.0.0.5", "10.1.0.0/16", "fd00::/8"]
    assert settings.secure_cookies is True


@pytest.mark.parametrize("value", ["*", ""])
def test_forwarded_allow_ips_may_be_anything_or_nothing(value):
    assert conf.load({**KEY, "FORWARDED_ALLOW_IPS": value}).forwarded_allow_ips == (
        [value] if value else []
    )


@pytest.mark.parametrize(
    ("origin", "words"),
    [
        ("hooks.example.com", "the scheme is required"),
        ("ftp://hooks.example.com", "the scheme is required"),
        ("https://hooks.example.com/", "nothing after it, not even a '/'"),
        ("https://hooks.example.com/admin", "nothing after it"),
        ("https://hooks.example.com?x=1", "nothing after it"),
        ("https://user@hooks.example.com", "a host name"),
        ("https://", "a host name"),
        ("https://hooks example.com", "a host name"),
        ("https://hooks.example.com:99999", "a port from 0 to 65535"),
        ("https://hooks.example.com:0", "a port from 1 to 65535"),
    ],
)
def test_a_bad_trusted_origin_is_named_with_what_was_expected(origin, words):
    with pytest.raises(ImproperlyConfigured) as refused:
        conf.load({**KEY, "CSRF_TRUSTED_ORIGINS": f"https://ok.example.com,{origin}"})
    message = str(refused.value)
    assert message.startswith(f"CSRF_TRUSTED_ORIGINS: {origin!r}: ")
    assert words in message
    assert "e.g. https://hooks.example.com" in message


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("proxy.internal", "'proxy.internal' is not an IP address or network"),
        ("10.0.0.1/24", "(did you mean 10.0.0.0/24?)"),
        ("*, 10.0.0.5", "'*' is not an IP address"),
        ("10.0.0.300", "'10.0.0.300' is not an IP address"),
    ],
)
def test_a_bad_forwarded_allow_ips_is_named(value, words):
    with pytest.raises(ImproperlyConfigured) as refused:
        conf.load({**KEY, "FORWARDED_ALLOW_IPS": value})
    message = str(refused.value)
    assert message.startswith(f"FORWARDED_ALLOW_IPS={value!r}: ")
    assert words in message
    assert "'*' alone" in message


@pytest.mark.parametrize("name", ["HOOKWAY_TRUST_X_FORWARDED_PROTO", "HOOKWAY_SECURE_COOKIES"])
def test_proxy_flags_must_be_booleans(name):
    with pytest.raises(ImproperlyConfigured, match=name):
        conf.load({**KEY, name: "sometimes"})


# A host project's settings.HOOKWAY dict (docs/django-app.md, "Settings").


def test_app_settings_merge_the_dict_over_the_environment(tmp_path):
    config = tmp_path / "hookway.toml"
    config.write_text("")
    settings = conf.load_app(
        {"CONFIG": config, "EMBEDDED_DISPATCHER": False, "RETRY_SCHEDULE": [0, 1, 2.5]},
        {"HOOKWAY_DB_TIMEOUT": "2", "HOOKWAY_EMBEDDED_DISPATCHER": "true"},
    )
    assert settings.config_path == config
    assert settings.embedded_dispatcher is False  # the dict wins over the environment
    assert settings.retry_schedule == (0.0, 1.0, 2.5)
    assert settings.db_timeout == 2.0  # the environment fills in what the dict leaves


def test_a_host_project_can_leave_the_garbage_collector_alone():
    assert conf.load_app({"GC_GEN0_THRESHOLD": 0}, {}).gc_gen0_threshold == 0
    assert conf.load_app({}, {}).gc_gen0_threshold == 2000


def test_app_settings_need_no_secret_key_and_ignore_the_servers_variables():
    # SECRET_KEY, DATABASE_URL, DEBUG belong to the host project, whatever they say.
    settings = conf.load_app({}, {"DATABASE_URL": "mysql://x/y", "DEBUG": "maybe"})
    assert settings.embedded_dispatcher is True
    assert settings.retry_schedule == conf.DEFAULT_RETRY_SCHEDULE


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (
            {"CONFIG": "/no/such/file.toml"},
            r"settings.HOOKWAY\['CONFIG'\]='/no/such/file.toml': no such file",
        ),
        ({"EMBEDDED_DISPATCHER": "sometimes"}, r"settings.HOOKWAY\['EMBEDDED_DISPATCHER'\]"),
        ({"DB_TIMEOUT": True}, r"settings.HOOKWAY\['DB_TIMEOUT'\]"),
        ({"RETRY_SCHEDULE": [0, -1]}, r"settings.HOOKWAY\['RETRY_SCHEDULE'\]"),
        ({"RETRY_SCHEDULE": {"a": 1}}, r"settings.HOOKWAY\['RETRY_SCHEDULE'\]"),
        ({"DISPATCHER_CONCURRENCY": 0}, r"settings.HOOKWAY\['DISPATCHER_CONCURRENCY'\]"),
        ({"GC_GEN0_THRESHOLD": -5}, r"settings.HOOKWAY\['GC_GEN0_THRESHOLD'\]"),
        (
            {"GC_GEN0_THRESHOLD": 2**40},
            r"settings.HOOKWAY\['GC_GEN0_THRESHOLD'\]=1099511627776: expected at most",
        ),
        ({"CONFG": "hookway.toml"}, r"settings.HOOKWAY\['CONFG'\]: not a Hookway setting"),
        ({"SECRET_KEY": "x"}, r"settings.HOOKWAY\['SECRET_KEY'\]: not a Hookway setting"),
    ],
)
def test_a_bad_app_setting_names_its_key(overrides, named):
    with pytest.raises(ImproperlyConfigured, match=named):
        conf.load_app(overrides, {})


def test_a_bad_environment_variable_is_still_named_in_a_host_project():
    with pytest.raises(ImproperlyConfigured, match=r"^HOOKWAY_POLL_INTERVAL="):
        conf.load_app({"DB_TIMEOUT": 1}, {"HOOKWAY_POLL_INTERVAL": "often"})


def test_app_settings_must_be_a_dict():
    with pytest.raises(ImproperlyConfigured, match="expected a dict"):
        conf.load_app(["CONFIG"], {})


def test_get_reads_a_dict_from_django_settings_and_follows_its_changes(settings):
    settings.HOOKWAY = {"EMBEDDED_DISPATCHER": False, "MAX_HEADERS": 20}
    assert conf.get().embedded_dispatcher is False
    assert conf.get() is conf.get()  # resolved once per value
    settings.HOOKWAY = {"MAX_HEADERS": 30}
    assert conf.get().max_headers == 30
    assert conf.get().embedded_dispatcher is True


def test_get_returns_the_standalone_servers_typed_settings_as_they_are(settings):
    typed = conf.load(KEY)
    settings.HOOKWAY = typed
    assert conf.get() is typed
