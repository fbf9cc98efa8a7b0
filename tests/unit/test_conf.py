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


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DEBUG": "maybe"}, "DEBUG"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL"),
        ({"HOOKWAY_CONFIG": "/no/such/file.toml"}, "HOOKWAY_CONFIG"),
        ({"HOOKWAY_EMBEDDED_DISPATCHER": "sometimes"}, "HOOKWAY_EMBEDDED_DISPATCHER"),
        ({"HOOKWAY_RETRY_SCHEDULE": "0,five"}, "HOOKWAY_RETRY_SCHEDULE"),
        ({"HOOKWAY_RETRY_SCHEDULE": "0,-1"}, "HOOKWAY_RETRY_SCHEDULE"),
        ({"HOOKWAY_DB_TIMEOUT": "soon"}, "HOOKWAY_DB_TIMEOUT"),
        ({"HOOKWAY_DISPATCHER_CONCURRENCY": "0"}, "HOOKWAY_DISPATCHER_CONCURRENCY"),
        ({"HOOKWAY_LOG_LEVEL": "LOUD"}, "HOOKWAY_LOG_LEVEL"),
        ({"HOOKWAY_DEMO": "perhaps"}, "HOOKWAY_DEMO"),
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
