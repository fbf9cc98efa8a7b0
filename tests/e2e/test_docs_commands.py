"""Every shell command the README and docs/ print works as printed, from the checkout,
in an operator's shell (no virtual environment activated, no `uv` assumed on PATH).

Each ```sh block runs as one bash script, in order, against a world made for it: a
migrated SQLite database holding a source, the `ci-bot` destination and an event, and a
live Hookway server configured with the docs' own hookway.toml examples (their `env:`
secrets set, as the docs say to). Only what the printed text can't give is changed:
the server's port (docs say 8000), and placeholder ids (`evt_01jd…`, `msg_01jd…`) become
real ones. Commands that serve until stopped (`make run`, uvicorn, gunicorn,
`./manage.py dispatch`) are started, must come up, and are stopped; the long runs
(`make test`, `make bench`, `make drill`) are checked with `make -n`. A block that can't
run anywhere (a production placeholder) says why in a `<!-- docs-test: skip … -->` line
above it, and the test holds it to that.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, free_port

pytestmark = [pytest.mark.e2e, pytest.mark.sqlite_only]

DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), ROOT / "bench" / "README.md"]
BLOCK = re.compile(
    r"(?:<!-- docs-test: (?P<mark>[^>]*?) -->\n)?^```(?P<lang>sh|shell|bash|toml)\n(?P<body>.*?)^```",
    re.S | re.M,
)
SECRETS = {
    "BILLING_SECRET": "billing-docs-secret",
    "GITHUB_WEBHOOK_SECRET": "github-docs-secret",
    "GITLAB_TOKEN": "gitlab-docs-token",
    "STRIPE_WEBHOOK_SECRET": "whsec_stripe-docs-secret",
    "ORDERS_WEBHOOK_SECRET": "whsec_"
    + base64.b64encode(b"orders-docs-secret-32-bytes-long").decode(),
}
# Serve until stopped: (how a command line starts, how to tell it is up).
SERVES = (
    "make run",
    ".venv/bin/uvicorn",
    ".venv/bin/gunicorn",
    ".venv/bin/hypercorn",
    ".venv/bin/granian",
    ".venv/bin/daphne",
    "./manage.py dispatch",
)
LONG_RUNS = ("make test", "make bench", "make drill")
ENV_PREFIX = re.compile(r"^(?:[A-Z_][A-Z0-9_]*=(?:'[^']*'|\S*)\s+)+")


@dataclass(frozen=True)
class Block:
    path: Path
    line: int
    lang: str
    mark: str
    body: str

    def __str__(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def blocks(lang: str = "sh") -> list[Block]:
    found = []
    for path in DOCS:
        text = path.read_text()
        for m in BLOCK.finditer(text):
            kind = "sh" if m["lang"] in ("sh", "shell", "bash") else m["lang"]
            if kind == lang:
                line = text.count("\n", 0, m.start("body"))
                found.append(Block(path, line, kind, m["mark"] or "", m["body"]))
    return found


def commands(body: str) -> list[str]:
    """The block's logical lines: continuations joined, blank lines dropped."""
    out: list[str] = []
    pending = ""
    for raw in body.splitlines():
        line = pending + raw
        if line.rstrip().endswith("\\"):
            pending = line.rstrip()[:-1] + " "
            continue
        pending = ""
        if line.strip():
            out.append(line)
    return out


@dataclass
class World:
    root: Path
    env: dict[str, str]
    port: int
    event_id: str
    delivery_id: str


def operator_env(database: Path, config: Path) -> dict[str, str]:
    venv_bin = str(Path(sys.executable).parent)
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != venv_bin)
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PATH")}
    env.update(
        {
            "PATH": path,
            "DATABASE_URL": f"sqlite:///{database}",
            "HOOKWAY_CONFIG": str(config),
            "HOOKWAY_ALLOW_PRIVATE_DESTINATIONS": "true",
            **SECRETS,
        }
    )
    return env


def docs_config(port: int) -> str:
    """The sources of docs/verification.md's examples, and the destination its GitLab
    route names, delivering to the server's own /echo."""
    sources = "".join(b.body + "\n" for b in blocks("toml") if b.path.name == "verification.md")
    destination = f'[[destinations]]\nname = "ci-bot"\nurl = "http://127.0.0.1:{port}/echo"\n'
    return sources + destination


@contextlib.contextmanager
def checkout_file(name: str, text: str) -> Iterator[Path]:
    """A file the docs expect in the checkout (`HOOKWAY_CONFIG=hookway.toml make run`),
    there for the test's duration; an operator's own file is set aside and put back."""
    path = ROOT / name
    aside = path.with_name(name + ".docs-test-aside")
    if path.exists():
        path.rename(aside)
    path.write_text(text)
    try:
        yield path
    finally:
        path.unlink()
        if aside.exists():
            aside.rename(path)


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        root = Path(tmp)
        port = free_port()
        config = stack.enter_context(checkout_file("hookway.toml", docs_config(port)))
        env = operator_env(root / "docs.sqlite3", config)
        run = {"cwd": ROOT, "env": env, "check": True, "capture_output": True, "text": True}
        subprocess.run(["./manage.py", "migrate", "-v0"], **run, timeout=120)  # type: ignore[call-overload]
        server = subprocess.Popen(
            [
                ".venv/bin/uvicorn",
                "hookway.asgi:application",
                "--port",
                str(port),
                "--lifespan",
                "on",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_up(f"http://127.0.0.1:{port}/readyz", server)
            # An event the docs' commands can act on: GitLab's, routed to ci-bot.
            response = httpx.post(
                f"http://127.0.0.1:{port}/hooks/gitlab",
                json={"object_kind": "push"},
                headers={"X-Gitlab-Token": SECRETS["GITLAB_TOKEN"]},
                timeout=10,
            )
            assert response.status_code == 202, response.text
            event_id = response.json()["id"]
            with sqlite3.connect(root / "docs.sqlite3") as db:
                (delivery_id,) = db.execute(
                    "SELECT id FROM hookway_delivery WHERE event_id = ?", [event_id]
                ).fetchone()
            yield World(root, env, port, event_id, delivery_id)
        finally:
            server.terminate()
            server.wait(timeout=30)


def wait_up(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"exited with {process.returncode} before serving {url}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not come up within {seconds}s")


def as_run(command: str, world: World) -> str:
    """The command as the test runs it: same words, this world's port and ids."""
    command = command.replace("127.0.0.1:8000", f"127.0.0.1:{world.port}")
    command = re.sub(r"evt_01jd…", world.event_id, command)
    command = re.sub(r"msg_01jd…", world.delivery_id, command)
    return command


def serve_briefly(command: str, world: World) -> None:
    """Start a command that serves until stopped, check it comes up, stop it."""
    port = free_port()
    words = command.split("#")[0].strip()
    if ENV_PREFIX.sub("", words).startswith("make run"):
        words = re.sub(r"PORT=\d+", "", words) + f" PORT={port}"
    else:
        words = re.sub(r"--port \d+", f"--port {port}", words)
        words = re.sub(r"-b [\d.]+:\d+", f"-b 127.0.0.1:{port}", words)
        words = re.sub(r"-p \d+", f"-p {port}", words)  # daphne
        words = words.replace("0.0.0.0", "127.0.0.1")
    log = world.root / f"serve-{port}.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["bash", "-c", words],
            cwd=ROOT,
            env=world.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        if ENV_PREFIX.sub("", words).startswith("./manage.py dispatch"):
            deadline = time.monotonic() + 60
            while "running (concurrency" not in log.read_text():
                assert process.poll() is None or "--until-empty" in words, log.read_text()
                if process.poll() is not None:
                    assert process.returncode == 0, log.read_text()
                    return
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.2)
            if "--until-empty" in words:
                assert process.wait(timeout=60) == 0, log.read_text()
        else:
            host = "127.0.0.1"
            wait_up(f"http://{host}:{port}/healthz", process)  # type: ignore[arg-type]
    finally:
        stop_group(process, log)


def stop_group(process: subprocess.Popen[bytes], log: Path) -> None:
    """SIGTERM the command's process group; it must be gone within a minute (the longest
    documented stop is granian's 35 s worker kill timeout), else it is killed and fails."""
    if process.poll() is not None:
        return
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"still running 60 s after SIGTERM:\n{log.read_text()}") from None


def run_block(block: Block, world: World) -> None:
    script = ["set -euo pipefail"]
    for command in commands(block.body):
        text = as_run(command, world)
        # What runs, past any leading VAR=value assignments.
        head = ENV_PREFIX.sub("", text.lstrip())
        if head.startswith(SERVES):
            if script[1:]:
                run_script(block, script, world)
                script = ["set -euo pipefail"]
            serve_briefly(text.strip(), world)
        elif head.startswith(LONG_RUNS):
            env_part = text.lstrip()[: len(text.lstrip()) - len(head)]
            make = shlex.split(head.split("#")[0])
            script.append(env_part + shlex.join(["make", "-n", *make[1:]]) + " >/dev/null")
        else:
            script.append(text)
    if script[1:]:
        run_script(block, script, world)


def run_script(block: Block, script: list[str], world: World) -> None:
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=ROOT,
        env=world.env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{block}: exit {result.returncode}\n{output}"
    for status in re.findall(r"^HTTP/1\.1 (\d{3})", output, re.M):
        assert status.startswith("2"), f"{block}: answered {status}\n{output}"
    assert '"error":' not in result.stdout, f"{block}: {output}"


SH_BLOCKS = blocks("sh")


def test_the_docs_print_commands() -> None:
    assert len(SH_BLOCKS) >= 15
    for block in SH_BLOCKS:
        if block.mark:
            assert block.mark.startswith("skip "), f"{block}: unknown mark {block.mark!r}"


@pytest.mark.parametrize("block", [b for b in SH_BLOCKS if not b.mark], ids=str)
def test_a_printed_command_block_works_as_printed(block: Block, world: World) -> None:
    run_block(block, world)
