"""hookway.cli.listen's parts with an injected transport: which headers the local app
gets, and how fetching an event fails (a server in trouble is a reconnect, a vanished
event a line, a refused key the end)."""

from __future__ import annotations

import httpx
import pytest

from hookway.cli.client import Api
from hookway.cli.errors import Refused
from hookway.cli.listen import Listener, forward_headers
from hookway.cli.output import Output
from hookway.cli.stream import Interrupted

EVENT = {"id": "evt_01jdzzzzzzzzzzzzzzzzzzzzzz", "source": "gitlab", "event_name": "push"}


def test_the_app_gets_the_senders_headers_but_not_the_connections_and_hookways_own() -> None:
    stored = {
        "Host": "hooks.example.com",
        "Content-Length": "2",
        "Content-Type": "text/plain",
        "Connection": "keep-alive",
        "Transfer-Encoding": "chunked",
        "Accept-Encoding": "gzip",
        "X-Hookway-Event": "forged",
        "User-Agent": "GitLab/17.0",
        "X-Gitlab-Event": "Push Hook",
        "X-Number": 3,  # not a string: never sent
    }

    headers = forward_headers(stored, "application/json", EVENT)

    assert headers == [
        ("User-Agent", "GitLab/17.0"),
        ("X-Gitlab-Event", "Push Hook"),
        ("Content-Type", "application/json"),
        ("X-Hookway-Event-Id", EVENT["id"]),
        ("X-Hookway-Event", "push"),
        ("X-Hookway-Source", "gitlab"),
    ]


def listener(api: Api) -> Listener:
    return Listener(
        api, "http://127.0.0.1:9/x", Output(as_json=True), replay_missed=False, timeout=1,
        filters={},
    )  # fmt: skip


async def fetch_with(answer: httpx.Response) -> object:
    def handler(request: httpx.Request) -> httpx.Response:
        return answer

    async with Api("http://hookway", "k", transport=httpx.MockTransport(handler)) as api:
        it = listener(api)
        try:
            return await it._fetch(EVENT)
        finally:
            await it.aclose()


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_a_server_in_trouble_while_fetching_is_a_reconnect(status: int) -> None:
    with pytest.raises(Interrupted, match=str(status)):
        await fetch_with(httpx.Response(status, json={"error": "unavailable", "detail": "busy"}))


async def test_an_event_gone_from_hookway_is_skipped(capsys: pytest.CaptureFixture[str]) -> None:
    gone = await fetch_with(httpx.Response(404, json={"error": "not_found", "detail": "no event"}))

    assert gone is None
    assert '"type": "gone"' in capsys.readouterr().out


async def test_a_refused_key_while_fetching_ends_the_listener() -> None:
    with pytest.raises(Refused):
        await fetch_with(httpx.Response(401, json={"error": "unauthorized", "detail": "revoked"}))
