"""The development SECRET_KEY: `manage.py check --deploy` flags it, and `make run`'s banner
says the demo uses it and how to set a real one."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command

from hookway import conf


def deploy_check() -> str:
    out, err = StringIO(), StringIO()
    call_command("check", "--deploy", stdout=out, stderr=err)
    return out.getvalue() + err.getvalue()


def test_check_deploy_flags_the_development_key(settings):
    settings.SECRET_KEY = conf.DEVELOPMENT_SECRET_KEY

    report = deploy_check()

    assert "hookway.W001" in report
    assert "development key" in report


def test_check_deploy_says_nothing_about_a_real_key(settings):
    assert settings.SECRET_KEY != conf.DEVELOPMENT_SECRET_KEY  # pytest-env sets one

    assert "hookway.W001" not in deploy_check()


def test_a_plain_check_leaves_the_development_key_to_check_deploy(settings):
    settings.SECRET_KEY = conf.DEVELOPMENT_SECRET_KEY
    out = StringIO()

    call_command("check", stdout=out, stderr=out)

    assert "hookway.W001" not in out.getvalue()


@pytest.mark.parametrize("key", ["development", "real"])
def test_the_banner_says_when_the_development_key_is_in_use(settings, key, db):
    if key == "development":
        settings.SECRET_KEY = conf.DEVELOPMENT_SECRET_KEY
    out = StringIO()

    call_command("banner", stdout=out)

    banner = out.getvalue()
    assert "Hookway is starting on" in banner
    if key == "development":
        assert "development SECRET_KEY (demo mode)" in banner
        assert "secrets.token_urlsafe(50)" in banner
    else:
        assert "SECRET_KEY" not in banner
