"""Plain data about what Hookway receives, shared by the model, the config file and
ingest: the names of the verification schemes. No Django, no I/O: a neutral module all
of them may import (as hookway.outbound is for deliveries)."""

from __future__ import annotations

from enum import StrEnum


class VerifyScheme(StrEnum):
    """How a source's webhooks are authenticated (docs/verification.md). The values are
    what ``Source.verify`` stores and what hookway.toml's ``verify`` says."""

    NONE = "none"
    TOKEN = "token"
    HMAC_SHA256 = "hmac-sha256"
    GITHUB = "github"
    GITLAB = "gitlab"
    STRIPE = "stripe"
    STANDARD_WEBHOOKS = "standard-webhooks"
