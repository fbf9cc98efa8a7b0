"""Hookway behind Debian's nginx, running deploy/nginx/hookway.conf itself (only its
port, certificate and upstream address are changed): webhooks pass through TLS and
nginx to a real Hookway and are delivered, the stored sender address is the real one
when Hookway trusts the proxy (and nginx's own when it does not, whatever the sender
wrote in X-Forwarded-For), and an oversized body gets nginx's 413.

nginx runs as a foreground process (``daemon off``) with a temporary prefix, config,
pid and logs. Not installed: the test installs Debian's package as `make bench-install`
installs wrk; it skips, saying why, only where that cannot be done."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from hookway.models import Event
from tests.conftest import ROOT, free_port

# The first run on a machine may install nginx (apt-get): more than the usual 120 s.
# Once, in the SQLite run: the proxy in front; ingest and delivery are tested on both databases.
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.django_db(transaction=True),
    pytest.mark.timeout(600),
    pytest.mark.sqlite_only,
]

SITE = ROOT / "deploy" / "nginx" / "hookway.conf"
HOST = "hooks.example.com"
SENDER = "127.0.0.2"  # the sender's own address; nginx reaches Hookway from 127.0.0.1
SOURCE_LIMIT = 4096


def _apt_install(package: str) -> str | None:
    """Install a Debian package; None, or why it could not be."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available (not Debian)"
    if os.geteuid() != 0:
        return "installing a Debian package needs root"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", package]
    if subprocess.run(install, env=env, capture_output=True, timeout=300).returncode == 0:
        return None
    subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300)
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=300)
    return (
        None if done.returncode == 0 else f"apt-get install {package} failed: {done.stderr[-500:]}"
    )


def find_nginx() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        problem = _apt_install("nginx")
        found = shutil.which("nginx", path="/usr/sbin:/usr/local/sbin:" + os.environ["PATH"])
        if found is None:
            pytest.skip(f"nginx is not installed and could not be: {problem}")
    return found


def site_config(upstream_port: int, port: int, cert: Path, key: Path) -> str:
    """deploy/nginx/hookway.conf with this test's port, certificate and upstream; every
    replaced line must be found, so the file can't drift away from what is tested."""
    text = SITE.read_text()
    swaps = {
        "server 127.0.0.1:8000;": f"server 127.0.0.1:{upstream_port};",
        "listen 443 ssl;": f"listen 127.0.0.1:{port} ssl;",
        "listen [::]:443 ssl;": "",
        "/etc/ssl/certs/hooks.example.com.pem": str(cert),
        "/etc/ssl/private/hooks.example.com.key": str(key),
    }
    for old, new in swaps.items():
        assert text.count(old) == 1, f"{SITE} no longer has {old!r}"
        text = text.replace(old, new)
    return text


@pytest.fixture
def nginx(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    binary = find_nginx()
    prefix = tmp_path / "nginx"
    prefix.mkdir()
    cert, key = prefix / "cert.pem", prefix / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", f"/CN={HOST}", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    processes: list[subprocess.Popen[bytes]] = []

    def start(upstream_port: int) -> str:
        port = free_port()
        (prefix / "hookway.conf").write_text(site_config(upstream_port, port, cert, key))
        temp = "\n".join(
            f"    {kind}_temp_path {prefix / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (prefix / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {prefix / 'nginx.pid'};\n"
            f"error_log {prefix / 'error.log'} info;\n"
            "events { worker_connections 128; }\n"
            f"http {{\n    access_log {prefix / 'access.log'};\n{temp}\n"
            f"    include {prefix / 'hookway.conf'};\n}}\n"
        )
        argv = [
            binary,
            "-p",
            str(prefix),
            "-c",
            str(prefix / "nginx.conf"),
            "-e",
            str(prefix / "error.log"),
        ]
        checked = subprocess.run([*argv, "-t"], capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        processes.append(process)
        url = f"https://127.0.0.1:{port}"
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            assert process.poll() is None, (prefix / "error.log").read_text()
            try:
                httpx.get(url + "/healthz", verify=False, timeout=1)
                return url
            except httpx.TransportError:
                time.sleep(0.1)
        raise AssertionError(f"nginx did not answer:\n{(prefix / 'error.log').read_text()}")

    yield start
    for process in processes:
        process.terminate()  # SIGTERM: nginx's fast shutdown
        process.wait(timeout=15)


def sender() -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=SENDER, verify=False)
    return httpx.Client(transport=transport, headers={"Host": HOST}, timeout=10)


@pytest.mark.parametrize(
    ("trusted", "stored"),
    [
        pytest.param("127.0.0.1", SENDER, id="proxy-trusted-real-sender-stored"),
        pytest.param("192.0.2.1", "127.0.0.1", id="proxy-untrusted-its-own-address-stored"),
    ],
)
def test_webhooks_through_nginx(
    trusted: str,
    stored: str,
    tmp_path: Path,
    nginx: Callable[[int], str],
    start_server: Callable[..., Any],
    receiver: Callable[..., Any],
) -> None:
    target = receiver()
    config = tmp_path / "hookway.toml"
    config.write_text(
        f'[[sources]]\nslug = "inbox"\nmax_body_bytes = {SOURCE_LIMIT}\n\n'
        f'[[destinations]]\nname = "sink"\nurl = "{target.url("/sink")}"\n\n'
        '[[routes]]\nsource = "inbox"\ndestination = "sink"\n'
    )
    server = start_server(
        {
            "HOOKWAY_CONFIG": str(config),
            "ALLOWED_HOSTS": f"{HOST},127.0.0.1",
            "FORWARDED_ALLOW_IPS": trusted,
        }
    )
    url = nginx(int(server.url.rsplit(":", 1)[1]))

    with sender() as client:
        # The sender claims another address: nginx replaces the header with the real one.
        accepted = [
            client.post(
                url + "/hooks/inbox",
                json={"type": "ping", "n": n},
                headers={"X-Forwarded-For": "203.0.113.9"},
            )
            for n in range(3)
        ]
        over_source = client.post(
            url + "/hooks/inbox", json={"type": "x", "pad": "x" * SOURCE_LIMIT}
        )
        over_nginx = client.post(
            url + "/hooks/inbox", json={"type": "x", "pad": "x" * (1024 * 1024)}
        )

    for response in accepted:
        assert response.status_code == 202, response.text
        assert Event.objects.get(pk=response.json()["id"]).client_ip == stored
    deadline = time.monotonic() + 20
    while len(target.received("/sink")) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sorted(r.body for r in target.received("/sink")) == sorted(
        r.request.content for r in accepted
    )
    # Between the source's limit and nginx's: Hookway's own answer.
    assert over_source.status_code == 413
    assert over_source.json()["error"] == "body_too_large"
    # Past client_max_body_size: nginx's, before Hookway sees the request.
    assert over_nginx.status_code == 413
    assert "nginx" in over_nginx.text
    assert Event.objects.count() == 3


def test_a_spoofed_x_forwarded_for_sent_straight_to_hookway_is_ignored(
    start_server: Callable[..., Any],
) -> None:
    """Hookway reachable without the proxy: an untrusted peer's header proves nothing."""
    from hookway.models import Source

    Source.objects.create(slug="inbox")
    server = start_server({"FORWARDED_ALLOW_IPS": "127.0.0.1"})
    with httpx.Client(transport=httpx.HTTPTransport(local_address=SENDER), timeout=10) as client:
        response = client.post(
            server.url + "/hooks/inbox",
            json={"type": "a"},
            headers={"X-Forwarded-For": "127.0.0.1"},
        )
    assert response.status_code == 202, response.text
    assert Event.objects.get(pk=response.json()["id"]).client_ip == SENDER
