"""The direct ingest path's headers answer every lookup as Django's ``HttpHeaders``
built from the same META does."""

from __future__ import annotations

from django.http.request import HttpHeaders
from hypothesis import given
from hypothesis import strategies as st

from hookway.ingest_direct import ScopeHeaders

names = st.sampled_from(
    ["HTTP_X_SIGNATURE_256", "HTTP_USER_AGENT", "CONTENT_TYPE", "CONTENT_LENGTH", "SERVER_NAME"]
) | st.from_regex(r"\AHTTP_[A-Z0-9_]{1,12}\Z")
metas = st.dictionaries(names, st.text(max_size=8), max_size=8)
lookups = st.sampled_from(
    ["X-Signature-256", "x_signature_256", "user-agent", "Content-Type", "content_length", "Nope"]
) | st.from_regex(r"\A[A-Za-z0-9_-]{1,12}\Z")


@given(metas, lookups)
def test_lookups_match_djangos_headers(meta: dict[str, str], name: str) -> None:
    ours, django = ScopeHeaders(meta), HttpHeaders(meta)

    assert ours.get(name) == django.get(name)
    assert ours.get(name, "fallback") == django.get(name, "fallback")
    assert list(ours.items()) == list(django.items())
    assert dict(ours) == dict(django)
    assert (name in ours) == (name in django)
