"""The click endpoint's hot path: `GET /t/{platform}/{link_token}` (contracts §1).

It never touches the relational database. Each tracking link's settings are
replicated into a Redis hash (`att:link:{token}`, written by
`attribution.services.tracking_link_sync`), and one Lua script does, atomically and
in a single round trip: look the link up, apply the per-source-IP and per-link rate
limits, store the click under each canonical key with the link's window as TTL,
detect a repeated click of the same device, and bump the hourly counters.

Redis layout (all keys prefixed `att:`, the setting ATTRIBUTION_REDIS_PREFIX):
- `link:{token}` hash: id, platform, app_id, os, enabled, dw (device window s),
  iw (IP+UA window s, 0 = off), rl (clicks per second allowed on this link).
- `k:{link_id}:{kind}:{value}` sorted set of the device's clicks on that link
  (member: click JSON, score: receipt time ms), trimmed to the window and to the
  last 50 clicks, TTL = the window. Repeated clicks of one device on one link land
  in the same set: they are counted, not treated as unrelated clicks.
- `stat:{link_id}:{YYYYMMDDHH UTC}` hash: clicks, os:<os>, repeated, unkeyed,
  rejected:<reason>; `rej:{YYYYMMDDHH}` hash for rejects by link (`-` = unknown).
  The same hashes carry 5-minute fields for analytics (docs/analytics.md):
  `m{MM}:{os}:c|r|u` (clicks, repeated, unkeyed) and `m{MM}:{os}:x:{reason}`,
  MM the bucket's first minute (00, 05, … 55); `m{MM}:-:{reason}` in `rej:` for
  clicks on unknown links.
- `uniq:{link_id}:{YYYYMMDDHH}:{os}` HyperLogLog of the clicking devices (the
  click's first canonical key), PFCOUNTed by the hourly rollup.
- `adclk:{link_id}:{YYYYMMDDHH UTC}` hash: clicks per `account|campaign|ad` (the
  platform's ids on the click), read by the ad reports (docs/adreports.md).
- `rl:ip:{ip}:{second}`, `rl:link:{id}:{second}`: fixed one-second windows.
- `src:{YYYYMMDDHHMM}` hash: clicks (accepted or rejected) per /24 or /48 of the
  click's `ip` parameter and 5-minute bucket, for alerts' source-range spikes
  (alerts/ranges.py).
- `log:clicks` stream, one entry per stored click (l link id, p platform, o os,
  r repeated, c click JSON, k device keys `kind:value` space-separated), and
  `log:rejects` (l link id or empty, p platform, x reason, c click JSON): the
  durable click log, drained by `exports.drain` into Parquet partitions (§9),
  capped at CLICK_LOG_MAXLEN entries.

Bounded work per click: the query string, each value, the CAID list and the number of
device keys are capped (`click_params`, `click_keys`), so one click writes at most
MAX_KEYS_PER_CLICK device keys plus its two rate-limit keys and its counters. A query
that breaks a bound is refused with `400 bad_query` and counted like any reject.

Both the lean WSGI door (`wsgi_app`, dispatched by config/wsgi.py) and the DRF
view (`attribution.views.click`) call `click_handle`.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from urllib.parse import parse_qsl

import redis
from django.conf import settings

from alerts import health, ranges
from attribution import devices, platforms
from core import metrics, telemetry
from core.redis import get_redis

logger = logging.getLogger("huodong.attribution.click")

STAT_TTL_SECONDS = 40 * 24 * 3600
MAX_CLICKS_PER_KEY = 50
# The click log (streams `log:clicks`, `log:rejects`, drained by exports.drain): a
# safety cap on Redis memory (~400 bytes an entry) if the drain stops for hours.
CLICK_LOG_MAXLEN = 3_000_000
MAX_QUERY_FIELDS = 64
MAX_QUERY_CHARS = 8192
MAX_VALUE_CHARS = 256
LONG_VALUE_CHARS = {"ua": 2048, "callback": 2048, "caid": 1024}
MAX_KEYS_PER_CLICK = 12  # idfa 2, caid MAX_CAIDS, imei 1, oaid 2, android_id 1, ipua 1
TS_RANGE_MS = (946_684_800_000, 4_102_444_800_000)  # 2000-01-01 .. 2100-01-01 UTC
_UA_MAX = 512
_BAD_PERCENT = re.compile(r"%(?![0-9A-Fa-f]{2})")

_SCRIPT = """
local link = redis.call('HMGET', KEYS[1], 'id', 'platform', 'enabled', 'dw', 'iw', 'rl', 'os')
local hour = ARGV[6]
local P = ARGV[9]
local m5 = string.format('m%02d', math.floor(tonumber(ARGV[3]) / 1000 % 3600 / 300) * 5)
if ARGV[12] ~= '' then  -- clicks per source range and 5-minute bucket (alerts/ranges.py)
  local rk = P .. ':src:' .. hour .. string.sub(m5, 2)
  redis.call('HINCRBY', rk, ARGV[12], 1)
  redis.call('EXPIRE', rk, @SRC_TTL@)
end
local function reject(reason, id)
  local k = P .. ':rej:' .. hour
  redis.call('HINCRBY', k, (id or '-') .. ':' .. reason, 1)
  redis.call('EXPIRE', k, @STAT_TTL@)
  redis.call('XADD', P .. ':log:rejects', 'MAXLEN', '~', @LOGMAX@, '*',
    'l', id or '', 'p', ARGV[2], 'x', reason, 'c', ARGV[7])
  if id then
    local sk = P .. ':stat:' .. id .. ':' .. hour
    redis.call('HINCRBY', sk, 'rejected:' .. reason, 1)
    redis.call('HINCRBY', sk, m5 .. ':' .. (ARGV[8] ~= '' and ARGV[8] or link[7] or '') .. ':x:' .. reason, 1)
    redis.call('EXPIRE', sk, @STAT_TTL@)
  else
    redis.call('HINCRBY', k, m5 .. ':-:' .. reason, 1)
  end
  return {reason, id or ''}
end
if not link[1] or link[2] ~= ARGV[2] then return reject('unknown_link', nil) end
local id = link[1]
if link[3] ~= '1' then return reject('link_disabled', id) end
if ARGV[10] ~= '' then return reject(ARGV[10], id) end
local now = tonumber(ARGV[3])
local sec = math.floor(now / 1000)
local ipk = P .. ':rl:ip:' .. ARGV[4] .. ':' .. sec
local n = redis.call('INCR', ipk)
if n == 1 then redis.call('EXPIRE', ipk, 2) end
if n > tonumber(ARGV[5]) then return reject('rate_limited_ip', id) end
local lk = P .. ':rl:link:' .. id .. ':' .. sec
n = redis.call('INCR', lk)
if n == 1 then redis.call('EXPIRE', lk, 2) end
if n > tonumber(link[6] or '1000') then return reject('rate_limited_link', id) end
local dw = tonumber(link[4]) * 1000
local iw = tonumber(link[5]) * 1000
local os = ARGV[8]
if os == '' then os = link[7] end
local repeated = 0
local written = 0
local dk = {}
local i = 13
while i < #ARGV do
  local kind = ARGV[i]
  local w = dw
  if kind == 'ipua' then w = iw end
  if w > 0 then
    local k = P .. ':k:' .. id .. ':' .. kind .. ':' .. ARGV[i + 1]
    if written == 0 and redis.call('EXISTS', k) == 1 then repeated = 1 end
    redis.call('ZADD', k, now, ARGV[7])
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - w)
    redis.call('ZREMRANGEBYRANK', k, 0, -@KEEP@)
    redis.call('PEXPIRE', k, w)
    written = written + 1
  end
  dk[#dk + 1] = kind .. ':' .. ARGV[i + 1]
  i = i + 2
end
local sk = P .. ':stat:' .. id .. ':' .. hour
redis.call('HINCRBY', sk, 'clicks', 1)
redis.call('HINCRBY', sk, 'os:' .. os, 1)
if repeated == 1 then redis.call('HINCRBY', sk, 'repeated', 1) end
if written == 0 then redis.call('HINCRBY', sk, 'unkeyed', 1) end
local mk = m5 .. ':' .. os .. ':'
redis.call('HINCRBY', sk, mk .. 'c', 1)
if repeated == 1 then redis.call('HINCRBY', sk, mk .. 'r', 1) end
if written == 0 then redis.call('HINCRBY', sk, mk .. 'u', 1) end
redis.call('EXPIRE', sk, @STAT_TTL@)
if ARGV[11] ~= '' then
  local ak = P .. ':adclk:' .. id .. ':' .. hour
  redis.call('HINCRBY', ak, ARGV[11], 1)
  redis.call('EXPIRE', ak, @STAT_TTL@)
end
redis.call('XADD', P .. ':log:clicks', 'MAXLEN', '~', @LOGMAX@, '*',
  'l', id, 'p', ARGV[2], 'o', os, 'r', repeated, 'c', ARGV[7], 'k', table.concat(dk, ' '))
if dk[1] then
  local uk = P .. ':uniq:' .. id .. ':' .. hour .. ':' .. os
  redis.call('PFADD', uk, dk[1])
  redis.call('EXPIRE', uk, @STAT_TTL@)
end
return {'ok', id, repeated, written}
"""
_SCRIPT = (
    _SCRIPT.replace("@STAT_TTL@", str(STAT_TTL_SECONDS))
    .replace("@KEEP@", str(MAX_CLICKS_PER_KEY + 1))
    .replace("@LOGMAX@", str(CLICK_LOG_MAXLEN))
    .replace("@SRC_TTL@", str(ranges.RAW_TTL_SECONDS))
)

REJECTIONS = {
    "unknown_link": (404, "No enabled tracking link has this platform and token."),
    "link_disabled": (403, "This tracking link is disabled."),
    "rate_limited_ip": (429, "Too many clicks from this source address; slow down."),
    "rate_limited_link": (429, "Too many clicks on this tracking link; slow down."),
    "bad_query": (400, "The query string breaks a bound of contracts §1."),
}


class BadQuery(Exception):
    """A click query that breaks a bound (answered `400 bad_query`, counted as a reject)."""


def prefix() -> str:
    return settings.ATTRIBUTION_REDIS_PREFIX


def link_redis_key(token: str) -> str:
    return f"{prefix()}:link:{token}"


def index_key(link_id: int | str, kind: str, value: str) -> str:
    return f"{prefix()}:k:{link_id}:{kind}:{value}"


def stat_key(link_id: int | str, hour: str) -> str:
    return f"{prefix()}:stat:{link_id}:{hour}"


def ad_field(params: dict[str, str]) -> str:
    """The click's `account|campaign|ad` (the platform's ids, contracts §1), the field
    of the hourly `adclk:{link_id}:{hour}` counter; empty when the click carries none."""
    ids = [(devices.clean(params.get(name)) or "")[:64].replace("|", "") for name in ("account", "campaign", "ad")]
    return "|".join(ids) if any(ids) else ""


def ad_click_counts(*, link_ids: list[int], hours: list[str]) -> dict[tuple[int, str, str, str], int]:
    """Our clicks per (tracking link, account, campaign, ad) over the given hour buckets."""
    client = get_redis()
    pipe = client.pipeline(transaction=False)
    pairs = [(link_id, hour) for link_id in link_ids for hour in hours]
    for link_id, hour in pairs:
        pipe.hgetall(f"{prefix()}:adclk:{link_id}:{hour}")
    counts: dict[tuple[int, str, str, str], int] = {}
    for (link_id, _), fields in zip(pairs, pipe.execute(), strict=True):
        for field, value in fields.items():
            account, campaign, ad = [*field.decode().split("|"), "", "", ""][:3]
            key = (link_id, account, campaign, ad)
            counts[key] = counts.get(key, 0) + int(value)
    return counts


def hour_bucket(epoch_s: float) -> str:
    return time.strftime("%Y%m%d%H", time.gmtime(epoch_s))


class _Script:
    """The Lua script, registered once per Redis client."""

    def __init__(self):
        self._client = None
        self._script = None

    def __call__(self, client: redis.Redis, keys: list, args: list):
        if self._client is not client:
            self._script = client.register_script(_SCRIPT)
            self._client = client
        return self._script(keys=keys, args=args, client=client)


_click_script = _Script()


def click_params(platform: str, query: str) -> dict[str, str]:
    """The click's query parameters, or BadQuery when the query breaks a bound: too long,
    too many fields, a value too long, invalid percent-encoding or UTF-8, or a `ts` / `os`
    out of range. `query` is the WSGI QUERY_STRING (its bytes as latin-1)."""
    if not query:
        return {}
    if len(query) > MAX_QUERY_CHARS:
        raise BadQuery(f"The query string is longer than {MAX_QUERY_CHARS} characters.")
    if _BAD_PERCENT.search(query):
        raise BadQuery("Invalid percent-encoding in the query string.")
    try:
        query = query.encode("latin-1").decode("utf-8")
    except UnicodeEncodeError:
        pass  # already text (not from a WSGI server)
    except UnicodeDecodeError:
        raise BadQuery("The query string is not UTF-8.") from None
    try:
        pairs = parse_qsl(query, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS, errors="strict")
    except UnicodeDecodeError:
        raise BadQuery("A query value is not UTF-8 once percent-decoded.") from None
    except ValueError:
        raise BadQuery(f"At most {MAX_QUERY_FIELDS} query parameters.") from None
    params: dict[str, str] = {}
    for name, value in pairs:
        limit = LONG_VALUE_CHARS.get(name, MAX_VALUE_CHARS)
        if len(value) > limit:
            raise BadQuery(f"{name[:32]}: at most {limit} characters.")
        params[name] = value
    ts = devices.clean(params.get("ts"))
    if ts is not None:
        ms = platforms.click_time_ms(platform, ts)
        if ms is None or not TS_RANGE_MS[0] <= ms <= TS_RANGE_MS[1]:
            raise BadQuery("ts: a Unix time (ms; tencent: s) between 2000 and 2100.")
    os = params.get("os") or ""
    allowed = ("0", "1", "3") if platform == platforms.OCEANENGINE else ("ios", "android")
    if os.strip().lower() not in allowed and devices.clean(os) is not None:
        raise BadQuery(f"os: one of {', '.join(allowed)}.")
    return params


def click_keys(platform: str, params: dict[str, str]) -> list[tuple[str, str]]:
    """Canonical (kind, value) pairs of a click, device ids in match order, IP+UA last.
    BadQuery when the CAID list is malformed or the click would write too many keys."""
    found: dict[str, list[str]] = {kind: [] for kind in devices.DEVICE_KINDS}

    def add(kind: str, value: str | None) -> None:
        if value and value not in found[kind]:
            found[kind].append(value)

    add("idfa", devices.idfa_key(params.get("idfa")))
    add("idfa", devices.clean_digest(params.get("idfa_md5")))
    try:
        caids = devices.caid_keys(params.get("caid"), hashed=platform == platforms.OCEANENGINE, strict=True)
    except devices.MalformedDeviceValue as exc:
        raise BadQuery(str(exc)) from None
    for caid in caids:
        add("caid", caid)
    add("imei", devices.clean_digest(params.get("imei_md5")))
    add("oaid", devices.oaid_key(params.get("oaid")))
    add("oaid", devices.clean_digest(params.get("oaid_md5")))
    add("android_id", devices.clean_digest(params.get("android_id_md5")))
    pairs = [(kind, value) for kind in devices.DEVICE_KINDS for value in found[kind]]
    ipua = devices.ipua_key(params.get("ip"), params.get("ua"))
    if ipua:
        pairs.append((devices.IPUA, ipua))
    if len(pairs) > MAX_KEYS_PER_CLICK:  # unreachable with today's kinds: the last line of defence
        raise BadQuery(f"At most {MAX_KEYS_PER_CLICK} device keys per click.")
    return pairs


def _click_record(platform: str, params: dict[str, str], now_us: int, os: str) -> str:
    def opt(name: str) -> str:
        return devices.clean(params.get(name)) or ""

    record = {
        "id": uuid.uuid4().hex[:20],
        "at": now_us // 1000,
        "us": now_us,  # orders two clicks of one millisecond
        "ts": platforms.click_time_ms(platform, params.get("ts")),
        "os": os,
        "cb": opt("callback"),
        "click_id": opt("click_id"),
        "account": opt("account"),
        "campaign": opt("campaign"),
        "ad": opt("ad"),
        "creative": opt("creative"),
        "ip": opt("ip"),
        "ua": opt("ua")[:_UA_MAX],
    }
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _error(code: str, message: str) -> bytes:
    return json.dumps({"error": {"code": code, "message": message}}, ensure_ascii=False).encode()


def click_handle(
    *, platform: str, token: str, query: str, source_ip: str, received_at_us: int | None = None
) -> tuple[int, bytes]:
    """Record one click; return (HTTP status, JSON body). Never raises on client input.

    `received_at_us` (Unix µs) backdates the click's receipt; only history generators
    (the demo, benchmarks) give it, the click URL never does."""
    started = time.perf_counter()
    now_us = time.time_ns() // 1000 if received_at_us is None else received_at_us
    now = now_us / 1_000_000
    bad = ""  # a bad query is refused by the script once the link is known, so it is counted
    os, record, keys, ad_ids, src = "", "", [], "", ""
    if platform not in platforms.PLATFORMS or not token or len(token) > 64:
        platform, token = "", ""  # no link has an empty token: counted as unknown_link
        record = _click_record(platform, {}, now_us, os)  # the reject log gets a record without values
    else:
        try:
            params = click_params(platform, query)
            keys = click_keys(platform, params)
            os = platforms.click_os(platform, params.get("os"), "")
            record = _click_record(platform, params, now_us, os)
            ad_ids = ad_field(params)
            src = ranges.source_range(params.get("ip"))
        except BadQuery as exc:
            bad, bad_message, keys = "bad_query", str(exc), []
            record = _click_record(platform, {}, now_us, "")
    args: list = [
        token,
        platform,
        now_us // 1000,
        source_ip or "-",
        settings.ATTRIBUTION_CLICK_RATE_PER_IP,
        hour_bucket(now),
        record,
        os,
        settings.ATTRIBUTION_REDIS_PREFIX,
        bad,
        ad_ids,
        src,
    ]
    for kind, value in keys:
        args += [kind, value]
    try:
        result = _click_script(get_redis(), [link_redis_key(token)], args)
    except redis.RedisError as exc:
        logger.error("click not recorded: redis unavailable", extra={"platform": platform, "error": str(exc)})
        metrics.click_count(platform, "unavailable")
        health.click_unavailable_note()
        return 503, _error("unavailable", "Click storage is unavailable; retry later.")
    outcome = result[0].decode()
    link_id = result[1].decode() if isinstance(result[1], bytes) else str(result[1])
    latency = round((time.perf_counter() - started) * 1000, 3)
    metrics.click_count(platform, "accepted" if outcome == "ok" else outcome)
    if outcome != "ok":
        status, message = REJECTIONS[outcome]
        if outcome == "bad_query":
            message = bad_message
        logger.warning(
            "click rejected",
            extra={"platform": platform, "link_id": link_id or None, "reason": outcome, "source_ip": source_ip},
        )
        return status, _error(outcome, message)
    logger.info(
        "click",
        extra={
            "platform": platform,
            "link_id": int(link_id),
            "os": os,
            "keys": [kind for kind, _ in keys],
            "repeated": bool(result[2]),
            "latency_ms": latency,
        },
    )
    return 200, platforms.click_answer(platform)


CLICK_ROUTE = "/t/{platform}/{link_token}"
_STATUS_LINES = {
    200: "200 OK",
    400: "400 Bad Request",
    403: "403 Forbidden",
    404: "404 Not Found",
    405: "405 Method Not Allowed",
    429: "429 Too Many Requests",
    503: "503 Service Unavailable",
}


def wsgi_app(environ, start_response):
    """The lean door: a WSGI app for `/t/...` that skips Django's request stack."""
    started = time.perf_counter()
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        status, body = 405, _error("method_not_allowed", "Use GET.")
    else:
        parts = environ.get("PATH_INFO", "").split("/")
        # ['', 't', platform, token] (a trailing slash is tolerated)
        if len(parts) in (4, 5) and parts[1] == "t" and (len(parts) == 4 or parts[4] == ""):
            handle = dict(platform=parts[2], token=parts[3], query=environ.get("QUERY_STRING", ""))
            if telemetry.tracing_enabled():  # a span for a sampled share (core/telemetry.py)
                with telemetry.click_span(environ, parts[2]) as span:
                    status, body = click_handle(**handle, source_ip=environ.get("REMOTE_ADDR", ""))
                    if span is not None:
                        span.set_attribute("http.response.status_code", status)
            else:
                status, body = click_handle(**handle, source_ip=environ.get("REMOTE_ADDR", ""))
        else:
            status, body = 404, _error("unknown_link", REJECTIONS["unknown_link"][1])
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    if status == 503:
        headers.append(("Retry-After", "5"))
    start_response(_STATUS_LINES[status], headers)
    metrics.request_observe(CLICK_ROUTE, environ.get("REQUEST_METHOD", ""), status, time.perf_counter() - started)
    return [body] if environ.get("REQUEST_METHOD") != "HEAD" else [b""]
