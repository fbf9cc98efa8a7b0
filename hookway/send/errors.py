"""The sender's exception tree: every way a delivery attempt can fail is classified here,
once, as retryable or permanent (httpx's ``_exceptions.py`` shape)."""

from __future__ import annotations


class DeliveryError(Exception):
    """An attempt failed before or without a usable HTTP response."""

    retryable = True


class RetryableError(DeliveryError):
    retryable = True


class ConnectFailed(RetryableError):
    """DNS, TCP or TLS failure: the receiver may be back later."""


class TimedOut(RetryableError):
    """No complete response within the destination's timeout."""


class PermanentError(DeliveryError):
    retryable = False


class DestinationRefused(PermanentError):
    """The SSRF guard refused the resolved address (loopback, private, link-local, …)."""


class InvalidDestination(PermanentError):
    """The destination URL can't be requested at all."""
