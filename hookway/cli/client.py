"""The operator API as the command line sees it: one httpx client, and every failure
translated once into the CliError its exit code stands for."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

import httpx

from hookway import __version__
from hookway.cli.errors import CliError, NotFound, Refused, Unreachable

# Over a whole request (connect, send, answer): an API call that takes longer is a server
# in trouble, and the command says so rather than hang.
DEADLINE = 30.0
USER_AGENT = f"hookway-cli/{__version__}"


def describe_transport_error(exc: BaseException) -> str:
    """The reason in a few words: what a person can act on."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.ConnectTimeout | httpx.ReadTimeout | httpx.WriteTimeout):
        return "timed out"
    if isinstance(exc, httpx.PoolTimeout | TimeoutError):
        return "timed out"
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, ConnectionRefusedError) or "Connection refused" in str(cause):
            return "connection refused"
        cause = cause.__cause__ or cause.__context__
    if "Errno 111" in text:
        return "connection refused"
    if "Name or service not known" in text or "nodename nor servname" in text:
        return "unknown host name"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the connection was closed mid-answer"
    return text


def error_fields(response: httpx.Response) -> tuple[str, str, Any]:
    """The API's (error code, detail, whole answer) for an error response."""
    try:
        data = response.json()
    except ValueError:
        text = response.text.strip()[:200] or response.reason_phrase
        return "http_" + str(response.status_code), text, None
    if isinstance(data, dict):
        return str(data.get("error", "error")), str(data.get("detail", "")), data
    return "http_" + str(response.status_code), str(data)[:200], data


def raise_for_answer(response: httpx.Response, what: str) -> None:
    """Raise the CliError for a non-2xx API answer about ``what``."""
    if response.is_success:
        return
    code, detail, data = error_fields(response)
    status = response.status_code
    if status == 401:
        raise Refused(
            f"the server refused the API key: {detail}",
            code=code,
            hint="check --key / HOOKWAY_API_KEY (`./manage.py create_api_key NAME` makes one)",
        )
    if status == 403:
        raise Refused(f"{detail}", code=code, hint="this needs a key with the write scope")
    if status == 404:
        raise NotFound(detail or f"{what}: not found", code=code, data=data)
    raise CliError(f"{what}: {status} {code}: {detail}", code=code, data=data, status=status)


class Api:
    """The operator API at ``url`` with ``key``; use as an async context manager."""

    def __init__(
        self, url: str, key: str | None, *, transport: httpx.AsyncBaseTransport | None = None
    ):
        self.url = url.rstrip("/")
        headers = {"User-Agent": USER_AGENT}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        self.client = httpx.AsyncClient(
            base_url=self.url, headers=headers, timeout=DEADLINE, transport=transport
        )

    async def __aenter__(self) -> Api:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    async def request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        expect: Iterable[int] = (),
        **kwargs: Any,
    ) -> httpx.Response:
        """The answer to ``method path``; CliError unless it is 2xx or in ``expect``."""
        try:
            async with asyncio.timeout(DEADLINE):
                response = await self.client.request(method, path, **kwargs)
        except (httpx.TransportError, TimeoutError) as exc:
            raise Unreachable(
                f"can't reach Hookway at {self.url}: {describe_transport_error(exc)}",
                code="unreachable",
                hint="is the server running, and is --server / HOOKWAY_URL right?",
            ) from None
        if response.status_code not in set(expect):
            raise_for_answer(response, what)
        return response

    async def get_json(self, path: str, *, what: str, **kwargs: Any) -> Any:
        response = await self.request("GET", path, what=what, **kwargs)
        return decode(response, what)

    async def post_json(self, path: str, *, what: str, **kwargs: Any) -> Any:
        response = await self.request("POST", path, what=what, **kwargs)
        return decode(response, what)


def decode(response: httpx.Response, what: str) -> Any:
    try:
        return response.json()
    except ValueError:
        raise CliError(
            f"{what}: the server's answer is not JSON ({response.status_code}); "
            "is --server a Hookway?"
        ) from None


def path(*parts: str) -> str:
    """An API path with each part quoted (an event id or a name typed by a person)."""
    return "/api/v1/" + "/".join(quote(p, safe="") for p in parts)


def dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
