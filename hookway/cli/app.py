"""The ``hookway`` command: its commands and options (typer), and the one place where a
CliError becomes a message and an exit code (docs/cli.md)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from hookway import __version__
from hookway.cli import config
from hookway.cli import destinations as destinations_cmd
from hookway.cli import events as events_cmd
from hookway.cli import listen as listen_cmd
from hookway.cli import replay as replay_cmd
from hookway.cli import send as send_cmd
from hookway.cli.client import Api
from hookway.cli.errors import CliError, UsageProblem
from hookway.cli.output import Output
from hookway.cli.stream import IDLE_TIMEOUT
from hookway.inbound import VerifyScheme

app = typer.Typer(
    name="hookway",
    help="Forward webhooks to localhost, send signed test webhooks, tail and replay events "
    "of a running Hookway (over its HTTP API).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
events_app = typer.Typer(help="Events Hookway received: tail them, show one.", no_args_is_help=True)
destinations_app = typer.Typer(
    help="List destinations (the default), or test one.", invoke_without_command=True
)
app.add_typer(events_app, name="events")
app.add_typer(destinations_app, name="destinations")

Server = Annotated[
    str | None,
    typer.Option(
        "--server", "-s", help=f"Hookway's URL (env {config.URL_ENV})", show_default=False
    ),
]
Key = Annotated[
    str | None,
    typer.Option("--key", "-k", help=f"An API key (env {config.KEY_ENV})", show_default=False),
]
Profile = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help=f"A profile of the config file (env {config.PROFILE_ENV})",
        show_default=False,
    ),
]
Json = Annotated[
    bool, typer.Option("--json", help="Output JSON (one object per line when following).")
]
SourceFilter = Annotated[str | None, typer.Option("--source", help="Only this source (its slug).")]
EventsFilter = Annotated[
    str | None,
    typer.Option("--events", "--event", help="Only these event names (a glob: 'merge_*')."),
]
IdleTimeout = Annotated[
    float,
    typer.Option(
        "--idle-timeout",
        min=0.1,
        help="Seconds without a byte (the server's keepalive included) before the stream "
        "counts as dead and is reconnected.",
    ),
]


def _version(value: bool) -> None:
    if value:
        typer.echo(f"hookway {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Hookway's command line."""


def _run(as_json: bool, body: Callable[[Output], Coroutine[Any, Any, None]]) -> None:
    """Run ``body``; turn a CliError into its message and exit code."""
    out = Output(as_json=as_json)
    try:
        asyncio.run(body(out))
    except CliError as exc:
        out.error(exc)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        # Ctrl-C during a one-shot command: stop without a traceback (the shell's 130).
        raise typer.Exit(130) from None


def _api(settings: config.Settings, *, key: bool = True) -> Api:
    return Api(settings.require_url(), settings.require_key() if key else settings.api_key)


def _settings(
    server: str | None, key: str | None, profile: str | None, as_json: bool
) -> config.Settings:
    try:
        return config.load(server, key, profile)
    except CliError as exc:
        Output(as_json=as_json).error(exc)
        raise typer.Exit(exc.exit_code) from None


@app.command()
def listen(
    forward_to: Annotated[
        str,
        typer.Option("--forward-to", "-f", help="Your app's URL: each event is POSTed there."),
    ],
    source: SourceFilter = None,
    events: EventsFilter = None,
    replay_missed: Annotated[
        bool,
        typer.Option(
            "--replay-missed",
            help="Keep events your app could not be reached for, and resend them (in order) "
            "when it answers again.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Seconds your app has to answer each event.")
    ] = 10.0,
    idle_timeout: IdleTimeout = IDLE_TIMEOUT,
    server: Server = None,
    key: Key = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """Forward every new webhook to your local app, one line each, until Ctrl-C."""
    settings = _settings(server, key, profile, as_json)
    if not forward_to.startswith(("http://", "https://")):
        Output(as_json=as_json).error(
            UsageProblem(f"--forward-to must be an http(s) URL, not {forward_to!r}")
        )
        raise typer.Exit(2)
    filters = {k: v for k, v in (("source", source), ("event", events)) if v}

    async def body(out: Output) -> None:
        async with _api(settings) as api:
            await listen_cmd.run(
                api,
                out,
                forward_to=forward_to,
                filters=filters,
                replay_missed=replay_missed,
                answer_within=timeout,
                idle_timeout=idle_timeout,
            )

    _run(as_json, body)


def _read_data(data: str | None) -> bytes:
    if data is None:
        return b"{}"
    if data == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(data).read_bytes()
    except OSError as exc:
        raise UsageProblem(f"--data: can't read {data}: {exc.strerror or exc}") from None


@app.command()
def send(
    source: Annotated[str, typer.Argument(help="The source's slug: sent to /hooks/SOURCE.")],
    event: Annotated[
        str | None,
        typer.Option(
            "--event", "-e", help="The event name, put where the source's scheme reads it."
        ),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option("--data", "-d", help="The body: a file, or - for standard input. Default {}."),
    ] = None,
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", help=f"The source's secret to sign with (env {config.SECRET_ENV})"
        ),
    ] = None,
    scheme: Annotated[
        VerifyScheme | None,
        typer.Option(
            "--scheme",
            help="The source's verify scheme; given, no API key is needed (the source is not looked up).",
            case_sensitive=False,
        ),
    ] = None,
    content_type: Annotated[
        str, typer.Option("--content-type", help="The body's content type.")
    ] = "application/json",
    header: Annotated[
        list[str] | None,
        typer.Option("--header", "-H", help="An extra header, 'Name: value' (repeatable)."),
    ] = None,
    server: Server = None,
    key: Key = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """Send a correctly signed webhook to a source, as its sender would."""
    settings = _settings(server, key, profile, as_json)

    async def body(out: Output) -> None:
        extra = []
        for h in header or []:
            name, colon, value = h.partition(":")
            if not colon or not name.strip():
                raise UsageProblem(f"--header {h!r}: expected 'Name: value'")
            extra.append((name.strip(), value.strip()))
        payload = _read_data(data)
        given = secret or settings.send_secret(source)
        async with _api(settings, key=scheme is None) as api:
            await send_cmd.send(
                api,
                out,
                source=source,
                body=payload,
                event_name=event,
                secret=given,
                scheme=scheme.value if scheme else None,
                content_type=content_type,
                extra_headers=extra,
                need_lookup=scheme is None,
            )

    _run(as_json, body)


@events_app.command("tail")
def events_tail(
    source: SourceFilter = None,
    events: EventsFilter = None,
    state: Annotated[
        str | None,
        typer.Option(
            "--state", help="Only events with a delivery pending, failing, delivered or dead."
        ),
    ] = None,
    lines: Annotated[
        int, typer.Option("--lines", "-n", min=0, max=200, help="Recent events to show first.")
    ] = 10,
    follow: Annotated[
        bool, typer.Option("--follow/--no-follow", help="Then follow new events and outcomes.")
    ] = True,
    idle_timeout: IdleTimeout = IDLE_TIMEOUT,
    server: Server = None,
    key: Key = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """The latest events, then new events and delivery outcomes as they happen."""
    settings = _settings(server, key, profile, as_json)
    filters = {k: v for k, v in (("source", source), ("event", events), ("state", state)) if v}

    async def body(out: Output) -> None:
        async with _api(settings) as api:
            await events_cmd.tail(
                api, out, filters=filters, lines=lines, follow=follow, idle_timeout=idle_timeout
            )

    _run(as_json, body)


@events_app.command("show")
def events_show(
    event_id: Annotated[str, typer.Argument(metavar="ID", help="The event's id (evt_…).")],
    server: Server = None,
    key: Key = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """One event: its headers, body, deliveries and every attempt."""
    settings = _settings(server, key, profile, as_json)

    async def body(out: Output) -> None:
        async with _api(settings) as api:
            await events_cmd.show(api, out, event_id)

    _run(as_json, body)


@app.command()
def replay(
    event_id: Annotated[
        str | None, typer.Argument(metavar="[ID]", help="An event to replay.", show_default=False)
    ] = None,
    dead: Annotated[bool, typer.Option("--dead", help="Replay every dead delivery.")] = False,
    destination: Annotated[
        list[str] | None,
        typer.Option(
            "--destination",
            "-d",
            help="Only to this destination (with ID: repeatable; with --dead: one).",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="With --dead: created at or after (ISO 8601).")
    ] = None,
    until: Annotated[
        str | None, typer.Option("--until", help="With --dead: created before (ISO 8601).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="With --dead: count what would be replayed; change nothing."
        ),
    ] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Replay what was replayed already, too.")
    ] = False,
    server: Server = None,
    key: Key = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """Replay one event, or every dead delivery (to a destination) with a progress bar."""
    settings = _settings(server, key, profile, as_json)
    names = destination or []

    async def body(out: Output) -> None:
        if (event_id is None) == (not dead):
            raise UsageProblem("give either an event ID or --dead (not both)")
        if event_id is not None:
            if dry_run or since or until:
                raise UsageProblem(
                    "--dry-run, --since and --until go with --dead",
                    hint="`hookway events show ID` shows what the event's deliveries are",
                )
            async with _api(settings) as api:
                await replay_cmd.replay_event(api, out, event_id, destinations=names, force=force)
            return
        if len(names) > 1:
            raise UsageProblem("--dead takes one --destination (or none: every destination)")
        filters: dict[str, str] = {"state": "dead"}
        for name, value in (
            ("destination", names[0] if names else None),
            ("since", since),
            ("until", until),
        ):
            if value:
                filters[name] = value
        async with _api(settings) as api:
            await replay_cmd.replay_bulk(api, out, filters=filters, force=force, dry_run=dry_run)

    _run(as_json, body)


@destinations_app.callback()
def destinations(
    ctx: typer.Context,
    server: Server = None,
    key: Key = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """List destinations with their state and pending deliveries."""
    if ctx.invoked_subcommand is not None:
        return
    settings = _settings(server, key, profile, as_json)

    async def body(out: Output) -> None:
        async with _api(settings) as api:
            await destinations_cmd.list_destinations(api, out)

    _run(as_json, body)


@destinations_app.command("test")
def destinations_test(
    name: Annotated[str, typer.Argument(help="The destination's name.")],
    server: Server = None,
    key: Key = None,
    profile: Profile = None,
    as_json: Json = False,
) -> None:
    """Send a hookway.ping to a destination now and show what came back (needs a write key)."""
    settings = _settings(server, key, profile, as_json)

    async def body(out: Output) -> None:
        async with _api(settings) as api:
            await destinations_cmd.test_destination(api, out, name)

    _run(as_json, body)


def main() -> None:
    app()
