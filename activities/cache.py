"""The cache of the public view of activities (Redis): the one place that reads and
writes it. Selectors only read the database; the page, the API and listings read the
public view through `public_activity_get`, a read-through cache that says so.

A per-slug generation number lives in Redis; publishing (or any status change) bumps
it after commit (`public_cache_invalidate`, called by the services). Each cache entry
(the public entry, the page HTML) is one Redis key per slug whose value starts with the
generation it was filled under, and counts only while that is the current generation:
a reader that raced a publish can only ever write an entry nobody will accept. Since
every key is known from the slug alone, a warm read is one MGET on the shared client.
"""

from __future__ import annotations

import json

from django.conf import settings

from activities import selectors
from activities.selectors import PublicActivity
from core.redis import get_redis


def _public_key(kind: str, slug: str) -> str:
    return f"huodong:activities:{kind}:{slug}"


def public_cache_invalidate(slug: str) -> None:
    """Start a new generation for `slug`: every entry filled before is ignored from now on."""
    get_redis().incr(_public_key("gen", slug))


def _entry_pack(generation: int, payload: bytes) -> bytes:
    return b"%d\n%b" % (generation, payload)


def _entry_unpack(raw: bytes | None, generation: int) -> bytes | None:
    """The payload of an entry filled under `generation`, else None (missing or stale)."""
    if raw is None:
        return None
    filled_under, _, payload = raw.partition(b"\n")
    return payload if int(filled_under) == generation else None


def _entry_fill(kind: str, slug: str, generation: int, payload: bytes) -> None:
    get_redis().set(_public_key(kind, slug), _entry_pack(generation, payload), ex=settings.ACTIVITY_CACHE_SECONDS)


def public_activity_get(slug: str, *, with_page: bool = False) -> PublicActivity:
    """The served view of `slug`, from the cache when warm (one Redis round trip, which
    also brings the cached page HTML when `with_page`); on a miss, read by
    `selectors.public_entry_load` and the entry filled under the generation read.
    Never fills an entry for a slug that names no activity."""
    kinds = ("gen", "public", "page") if with_page else ("gen", "public")
    values: list[bytes | None] = get_redis().mget([_public_key(kind, slug) for kind in kinds])  # type: ignore[assignment]  # bytes client
    raw_generation, raw_entry, *raw_page = values
    generation = int(raw_generation) if raw_generation else 0
    payload = _entry_unpack(raw_entry, generation)
    if payload is None:
        entry = selectors.public_entry_load(slug)
        # Only slugs of real activities get an entry: a negative entry per unknown slug
        # would let anyone fill Redis by asking for made-up slugs (an unknown slug costs
        # one indexed query instead).
        if entry["status"] is not None:
            _entry_fill("public", slug, generation, json.dumps(entry, ensure_ascii=False).encode())
    else:
        entry = json.loads(payload)
    page = _entry_unpack(raw_page[0], generation) if raw_page else None
    return selectors.public_activity_of(
        entry, generation=generation, page_html=page.decode() if page is not None else None
    )


def public_page_fill(slug: str, generation: int, html: str) -> None:
    """Cache the rendered page of a served view, under the generation it was read at."""
    _entry_fill("page", slug, generation, html.encode())
