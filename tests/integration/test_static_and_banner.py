"""A new operator's first minutes: the admin's static files are served (over ASGI, by
WhiteNoise's responders), `make run`'s banner shows the sources actually configured, and
`make superuser` works without a terminal."""

from __future__ import annotations

import inspect
import io
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from whitenoise.middleware import WhiteNoiseMiddleware
from whitenoise.responders import StaticFile

from hookway.models import Source
from tests import conftest
from tests.conftest import ROOT

pytestmark = pytest.mark.django_db(transaction=True)


async def test_the_admin_stylesheet_is_served_with_caching_headers(client: httpx.AsyncClient):
    response = await client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/css")
    assert "body" in response.text
    assert int(response.headers["Content-Length"]) == len(response.content)
    etag = response.headers["ETag"]
    again = await client.get("/static/admin/css/base.css", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    head = await client.head("/static/admin/js/core.js")
    assert head.status_code == 200
    assert head.content == b""


async def test_a_missing_static_file_falls_through_to_django(client: httpx.AsyncClient):
    response = await client.get("/static/admin/css/no-such.css")
    assert response.status_code == 404


def test_the_whitenoise_parts_hookway_static_uses_are_there() -> None:
    # hookway.static reads WhiteNoise's file index and responders directly.
    from hookway.static import StaticFiles

    wn = StaticFiles()._whitenoise
    assert isinstance(wn, WhiteNoiseMiddleware)
    assert isinstance(wn.files, dict)
    assert callable(wn.find_file)
    assert wn.static_prefix == "/static/"
    assert list(inspect.signature(StaticFile.get_response).parameters) == [
        "self",
        "method",
        "request_headers",
    ]


def banner(monkeypatch: pytest.MonkeyPatch, config: Path | None, **env: str) -> str:
    import dataclasses

    from django.conf import settings

    monkeypatch.setattr(
        settings, "HOOKWAY", dataclasses.replace(settings.HOOKWAY, config_path=config)
    )
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    call_command("banner", stdout=out)
    return out.getvalue()


def test_the_banner_shows_the_configured_sources_and_a_curl_that_works(monkeypatch, tmp_path, db):
    config = tmp_path / "hookway.toml"
    config.write_text(
        '[[sources]]\nslug = "gitlab"\nverify = "gitlab"\nsecret = "env:GITLAB_TOKEN"\n'
        '[[sources]]\nslug = "billing"\nverify = "stripe"\nsecret = "whsec_x"\n'
    )
    text = banner(monkeypatch, config, GITLAB_TOKEN="t0k", PORT="9123")
    assert "POST http://127.0.0.1:9123/hooks/gitlab   (verify = gitlab)" in text
    assert "POST http://127.0.0.1:9123/hooks/billing   (verify = stripe)" in text
    assert '-H "X-Gitlab-Token: $GITLAB_TOKEN"' in text
    assert "/hooks/demo" not in text
    assert "t0k" not in text
    assert "http://127.0.0.1:9123/api/v1/docs" in text
    assert "create_api_key" in text


def test_in_demo_mode_the_banner_gives_the_make_target_for_an_api_key(monkeypatch, db, settings):
    from hookway import conf

    settings.SECRET_KEY = conf.DEVELOPMENT_SECRET_KEY  # what `make run` runs with
    text = banner(monkeypatch, None)
    assert "(a key: make api-key NAME=me)" in text
    assert "development SECRET_KEY (demo mode)" in text


def test_without_a_config_file_the_banner_lists_the_databases_sources(monkeypatch, db):
    Source.objects.create(slug="inbox", verify="none")
    text = banner(monkeypatch, None)
    assert "Sources (from the database):" in text
    assert "curl -X POST http://127.0.0.1:8000/hooks/inbox" in text
    assert "/hooks/demo" not in text


def test_with_no_source_at_all_the_banner_says_how_to_add_one(monkeypatch, db):
    assert "No sources yet" in banner(monkeypatch, None)


def test_make_superuser_works_without_a_terminal(db):
    # As from an operator's shell: not inside the test runner's virtual environment.
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PATH")},
        "PATH": path,
        "DATABASE_URL": conftest.test_database_url(),
        "DJANGO_SUPERUSER_USERNAME": "ops",
        "DJANGO_SUPERUSER_PASSWORD": "correct-horse-battery-staple",
    }
    result = subprocess.run(
        ["make", "-s", "superuser"],
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "superuser ops created" in result.stdout
    user = User.objects.get(username="ops")
    assert user.is_superuser
    assert user.check_password("correct-horse-battery-staple")


@pytest.mark.parametrize(
    "argv",
    [
        ["./manage.py", "check"],
        [".venv/bin/python", "-m", "uvicorn", "hookway.asgi:application", "--port", "1"],
    ],
    ids=["manage.py", "uvicorn"],
)
def test_a_bad_setting_is_one_clear_line_and_a_nonzero_exit(argv: list[str]) -> None:
    env = {**os.environ, "HOOKWAY_RETRY_SCHEDULE": "0,five"}
    result = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert "Hookway can't start: HOOKWAY_RETRY_SCHEDULE='0,five'" in result.stderr
