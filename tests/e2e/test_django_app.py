"""Hookway as a reusable Django app, from a built wheel: a fresh virtualenv, a fresh
``django-admin startproject`` with Hookway added as docs/django-app.md says, migrated;
webhooks received through the fast path (a real uvicorn, the project's ASGI app
wrapped) and through the plain Django view (the test client, no wrapping), an event
published in a transaction, and all of it delivered to a real local receiver by
``manage.py dispatch --until-empty``, a handler function of the project's included."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port
from tests.e2e.test_docs_commands import wait_up
from tests.receivers import Receiver

pytestmark = [pytest.mark.e2e, pytest.mark.sqlite_only]  # the project's own SQLite

GITLAB_TOKEN = "glpat-django-app-test"


def uv() -> list[str]:
    """uv: the one running these tests (``uv run`` says where in $UV, and its PATH puts
    the project's virtualenv, which has no uv module, first), else one on PATH."""
    found = os.environ.get("UV") or shutil.which("uv")
    return [found] if found else ["python3", "-m", "uv"]


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> str:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert result.returncode == 0, (
        f"{argv}: exit {result.returncode}\n{result.stdout}{result.stderr}"
    )
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv holding the wheel built from this checkout and its locked
    dependencies (from uv's cache or the package index uv is configured with)."""
    tmp = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k != "VIRTUAL_ENV"}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    run([*uv(), "build", "--wheel", "--out-dir", str(tmp / "dist")], ROOT, env)
    [wheel] = (tmp / "dist").glob("hookway-*.whl")
    requirements = tmp / "requirements.txt"
    exported = run(
        [*uv(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--quiet"],
        ROOT,
        env,
    )
    requirements.write_text(exported)
    run([*uv(), "venv", "--quiet", "--python", sys.executable, str(tmp / "venv")], tmp, env)
    python = tmp / "venv" / "bin" / "python"
    run(
        [
            *uv(),
            "pip",
            "install",
            "--quiet",
            "--python",
            str(python),
            "-r",
            str(requirements),
            str(wheel),
        ],
        tmp,
        env,
    )
    return tmp / "venv"


SETTINGS = """

# Hookway (docs/django-app.md)
INSTALLED_APPS += ["hookway"]
HOOKWAY = {
    "CONFIG": BASE_DIR / "hookway.toml",
    "EMBEDDED_DISPATCHER": False,
    "ALLOW_PRIVATE_DESTINATIONS": True,  # the receiver is on 127.0.0.1
    "RETRY_SCHEDULE": [0, 1],
}
"""

CONFIG = """
[[sources]]
slug = "gitlab"
verify = "gitlab"
secret = "env:GITLAB_TOKEN"
require_event_name = true

[[sources]]
slug = "orders"

[[destinations]]
name = "worker"
url = "{url}"

[[routes]]
source = "gitlab"
destination = "worker"

[[routes]]
source = "orders"
destination = "worker"
events = ["order.*"]

[[destinations]]
name = "audit"
handler = "shop.audit:record"

[[routes]]
source = "orders"
destination = "audit"
"""

# A handler destination: the project's own function, run by the dispatcher, using the ORM.
AUDIT = """
import hookway
from django.contrib.auth.models import Group


def record(event: hookway.HandlerEvent) -> None:
    groups = sorted(Group.objects.values_list("name", flat=True))
    with open("handled.log", "a") as log:
        log.write(f"{event.event_name} {event.payload['order']} attempt={event.attempt} {groups}\\n")
"""

# The plain Django path: the project's own URLconf and view, no wrapping, test client.
VIEW_PATH = f"""
from django.test import Client
response = Client(HTTP_HOST="localhost").post(
    "/hooks/gitlab", {{"object_kind": "tag_push"}}, content_type="application/json",
    headers={{"X-Gitlab-Token": "{GITLAB_TOKEN}"}},
)
print("answered", response.status_code, response.content.decode())
"""

PUBLISH = """
from django.contrib.auth.models import Group
from django.db import transaction
import hookway

try:
    with transaction.atomic():
        Group.objects.create(name="rolled-back")
        hookway.publish("orders", "order.paid", {"order": "rolled-back"})
        raise RuntimeError("payment declined")
except RuntimeError:
    pass
with transaction.atomic():
    Group.objects.create(name="paid")
    hookway.publish("orders", "order.paid", {"order": "paid"})
try:
    hookway.publish("nowhere", "order.paid", {})
except hookway.UnknownSource as exc:
    print(exc)
"""


def test_a_fresh_project_with_hookway_receives_publishes_and_delivers(venv: Path, tmp_path: Path):
    receiver = Receiver()
    try:
        bin_ = venv / "bin"
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATABASE_URL")}
        env.update({"GITLAB_TOKEN": GITLAB_TOKEN, "PATH": f"{bin_}{os.pathsep}{env['PATH']}"})
        env.pop("DJANGO_SETTINGS_MODULE", None)
        env.pop("HOOKWAY_CONFIG", None)
        project = tmp_path / "shop"
        project.mkdir()
        run([str(bin_ / "django-admin"), "startproject", "shop", str(project)], tmp_path, env)
        with (project / "shop" / "settings.py").open("a") as f:
            f.write(SETTINGS)
        urls = project / "shop" / "urls.py"
        urls.write_text(
            urls.read_text()
            .replace("from django.urls import path", "from django.urls import include, path")
            .replace(
                "    path('admin/', admin.site.urls),",
                "    path('admin/', admin.site.urls),\n    path('hooks/', include('hookway.urls')),",
            )
            .replace(
                '    path("admin/", admin.site.urls),',
                '    path("admin/", admin.site.urls),\n    path("hooks/", include("hookway.urls")),',
            )
        )
        assert (
            "include('hookway.urls')" in urls.read_text()
            or 'include("hookway.urls")' in urls.read_text()
        )
        asgi = project / "shop" / "asgi.py"
        asgi.write_text(
            asgi.read_text().replace(
                "application = get_asgi_application()",
                "import hookway.asgi\n\napplication = hookway.asgi.wrap(get_asgi_application())",
            )
        )
        (project / "hookway.toml").write_text(CONFIG.format(url=receiver.url("/worker")))
        (project / "shop" / "audit.py").write_text(AUDIT)
        python = str(bin_ / "python")

        # The wheel's hookway, not this checkout's.
        where = run([python, "-c", "import hookway; print(hookway.__file__)"], tmp_path, env)
        assert where.startswith(str(venv)), where

        run([python, "manage.py", "migrate", "--no-input", "-v0"], project, env)
        assert "[X] 0001_initial" in run(
            [python, "manage.py", "showmigrations", "hookway"], project, env
        )

        # The fast path: uvicorn on the project's wrapped ASGI app (its lifespan syncs
        # the config file).
        port = free_port()
        server = subprocess.Popen(
            [
                str(bin_ / "uvicorn"),
                "shop.asgi:application",
                "--port",
                str(port),
                "--lifespan",
                "on",
            ],
            cwd=project,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(f"http://127.0.0.1:{port}/admin/login/", server)
            base = f"http://127.0.0.1:{port}/hooks/gitlab"
            token = {"X-Gitlab-Token": GITLAB_TOKEN}
            stored = httpx.post(
                base, json={"event_name": "project_create"}, headers=token, timeout=10
            )
            nameless = httpx.post(base, json={"user": "x"}, headers=token, timeout=10)
            admin = httpx.get(f"http://127.0.0.1:{port}/admin/login/", timeout=10)
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert stored.status_code == 202, stored.text
        assert stored.json()["deliveries"] == 1
        assert nameless.status_code == 400
        assert admin.status_code == 200  # the project's own pages are its own
        assert "Hookway" not in admin.text  # its admin keeps its titles

        # The plain Django path, without the wrapper.
        answer = run([python, "manage.py", "shell", "--no-imports", "-c", VIEW_PATH], project, env)
        assert "answered 202 " in answer, answer

        said = run([python, "manage.py", "shell", "--no-imports", "-c", PUBLISH], project, env)
        assert "no enabled source named 'nowhere'" in said

        run([python, "manage.py", "dispatch", "--until-empty"], project, env, timeout=120)

        bodies = sorted(json.dumps(json.loads(r.body), sort_keys=True) for r in receiver.received())
        assert bodies == sorted(
            [
                json.dumps({"event_name": "project_create"}),
                json.dumps({"object_kind": "tag_push"}),
                json.dumps({"order": "paid"}),
            ]
        )
        names = sorted(r.headers["x-hookway-event"] for r in receiver.received())
        assert names == ["order.paid", "project_create", "tag_push"]
        # The handler ran once, for the committed order only, and saw its transaction's row.
        handled = (project / "handled.log").read_text().splitlines()
        assert handled == ["order.paid paid attempt=1 ['paid']"]
    finally:
        receiver.stop()
