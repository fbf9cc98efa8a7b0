"""A stored body as the event page shows it: JSON pretty-printed and highlighted
(keys, strings, numbers, literals each in a span of their own class), anything else as
text. Server-side and escaped here: a payload is the sender's, never trusted markup."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Tokens of json.dumps(..., indent=2) output: a string (then, if a colon follows, a key),
# a number, a literal. Everything between them is punctuation and whitespace.
_TOKEN = re.compile(
    r'(?P<string>"(?:[^"\\]|\\.)*")(?P<colon>\s*:)?'
    r"|(?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)"
    r"|(?P<literal>\btrue\b|\bfalse\b|\bnull\b)"
)

_SURROGATE = re.compile("[\ud800-\udfff]")

# Past this a body is shown as it is, unhighlighted: a span per token of a megabyte of
# JSON makes a page the browser is slow to draw.
HIGHLIGHT_LIMIT = 256 * 1024


@dataclass(frozen=True)
class Body:
    html: SafeString
    kind: str  # "json" or "text"
    size: int


def _highlight(text: str) -> str:
    out: list[str] = []
    last = 0
    for match in _TOKEN.finditer(text):
        out.append(escape(text[last : match.start()]))
        if match.group("string") is not None:
            kind = "k" if match.group("colon") else "s"
            out.append(f'<span class="j-{kind}">{escape(match.group("string"))}</span>')
            out.append(escape(match.group("colon") or ""))
        elif match.group("number") is not None:
            out.append(f'<span class="j-n">{match.group("number")}</span>')
        else:
            out.append(f'<span class="j-l">{match.group("literal")}</span>')
        last = match.end()
    out.append(escape(text[last:]))
    return "".join(out)


def render_body(body: bytes) -> Body:
    """``body`` as highlighted JSON when it is UTF-8 JSON, else as (escaped) text with
    undecodable bytes replaced."""
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        text = body.decode("utf-8", errors="replace")
        return Body(mark_safe(escape(text)), "text", len(body))  # noqa: S308 - escaped
    pretty = json.dumps(value, indent=2, ensure_ascii=False)
    # A lone surrogate (valid JSON, not valid Unicode: the page could not be encoded)
    # is shown as the escape it was sent as.
    pretty = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", pretty)
    if len(pretty) > HIGHLIGHT_LIMIT:
        return Body(mark_safe(escape(pretty)), "json", len(body))  # noqa: S308 - escaped
    return Body(mark_safe(_highlight(pretty)), "json", len(body))  # noqa: S308 - escaped
