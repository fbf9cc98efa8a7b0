"""The sender's exception tree: every way a delivery attempt can fail is classified here,
once, as retryable or permanent, and by kind (httpx's ``_exceptions.py`` shape).

``classify`` turns whatever the HTTP transport raised into one of these. Transports
disagree about what they raise (httpx-aiohttp reports a refused connection as
``httpx.ConnectTimeout``, httpx's own as ``ConnectError('All connection attempts
failed')``), so it reads the cause chain down to the operating system's error rather
than trusting the outer exception's name.
"""

from __future__ import annotations

import ssl

import httpx

from hookway.outbound import ErrorKind


class DeliveryError(Exception):
    """An attempt failed before or without a usable HTTP response."""

    retryable = True
    kind = ErrorKind.CONNECTION


class RetryableError(DeliveryError):
    retryable = True


class ConnectFailed(RetryableError):
    """A network failure the receiver may recover from."""

    kind = ErrorKind.CONNECTION


class DnsFailed(ConnectFailed):
    """The destination's host name did not resolve."""

    kind = ErrorKind.DNS


class ConnectionRefused(ConnectFailed):
    """Nothing accepted the connection (the receiver is down)."""

    kind = ErrorKind.CONNECTION_REFUSED


class TlsFailed(ConnectFailed):
    """The TLS handshake failed (certificate, protocol, or not TLS at all)."""

    kind = ErrorKind.TLS


class ConnectionReset(ConnectFailed):
    """The connection broke before a complete response arrived."""

    kind = ErrorKind.CONNECTION_RESET


class TimedOut(RetryableError):
    """No complete response before the attempt's deadline."""

    kind = ErrorKind.TIMEOUT


class PermanentError(DeliveryError):
    retryable = False


class DestinationRefused(PermanentError):
    """The SSRF guard refused the resolved address (loopback, private, link-local, …)."""

    kind = ErrorKind.REFUSED_BY_GUARD


class InvalidDestination(PermanentError):
    """The destination URL can't be requested at all."""

    kind = ErrorKind.INVALID_DESTINATION


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _root_message(chain: list[BaseException]) -> str:
    for exc in reversed(chain):
        # aiohttp's protocol errors carry their text in ``message`` (str() adds a code
        # and line breaks).
        text = " ".join(str(getattr(exc, "message", None) or exc).split())
        if text:
            return text
    return type(chain[0]).__name__


def classify(exc: BaseException, phase: str) -> DeliveryError:
    """Return the DeliveryError for what a transport raised while ``phase`` (e.g.
    "connecting", "reading the response"), with a message naming the kind and the
    underlying error."""
    chain = _chain(exc)
    detail = _root_message(chain)
    names = " > ".join(dict.fromkeys(type(e).__name__ for e in chain))
    for e in chain:
        if isinstance(e, ssl.SSLError) or type(e).__name__.startswith(
            ("ClientConnectorSSL", "ClientSSL", "ClientConnectorCertificate")
        ):
            return TlsFailed(f"TLS failed while {phase}: {detail} ({names})")
        if isinstance(e, ConnectionRefusedError):
            return ConnectionRefused(f"connection refused while {phase}: {detail}")
        if isinstance(e, ConnectionResetError | BrokenPipeError | ConnectionAbortedError):
            return ConnectionReset(f"connection reset while {phase}: {detail} ({names})")
    for e in chain:
        # Without an OS error underneath: the peer closed the connection cleanly, or
        # sent something that isn't HTTP.
        if type(e).__name__ == "ClientResponseError":  # aiohttp's "not valid HTTP"
            return ConnectionReset(f"invalid HTTP from the receiver while {phase}: {detail}")
        if isinstance(e, httpx.RemoteProtocolError) or type(e).__name__ in (
            "ServerDisconnectedError",
            "ClientPayloadError",
            "ClientOSError",
        ):
            return ConnectionReset(f"connection closed while {phase}: {detail} ({names})")
    if any(isinstance(e, httpx.TimeoutException | TimeoutError) for e in chain):
        return TimedOut(f"timed out while {phase}: {detail} ({names})")
    return ConnectFailed(f"network error while {phase}: {detail} ({names})")
