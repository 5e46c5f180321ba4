"""The one typed Settings object. Every value is also a ``RETAKE_*`` environment variable.

Nothing is built at import time: the server's lifespan reads a Settings instance and creates engines,
listeners and clients from it.
"""

from __future__ import annotations

import os
import re
import ssl
from pathlib import Path
from typing import Final
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The named curve configs of ``ledger.configs.NAMED_CONFIGS`` (tests/ledger/test_config_names.py keeps the two
# equal): config imports nothing of the project, so the names are restated here for validation.
TOKEN_CONFIG_NAMES: Final = ("A", "B", "C", "D")

_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*(second|seconds|minute|minutes|hour|hours)\s*$")
_UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600}


def parse_rate(text: str) -> tuple[int, float]:
    """Parse ``"5/minute"`` or ``"20/10seconds"`` into (count, window seconds)."""
    match = _RATE_RE.match(text)
    if not match:
        raise ValueError(f"rate {text!r} is not like '5/minute' or '20/10seconds'")
    count, multiplier, unit = match.groups()
    window = (int(multiplier) if multiplier else 1) * _UNIT_SECONDS[unit.rstrip("s")]
    if int(count) < 1 or window < 1:
        raise ValueError(f"rate {text!r} must allow at least one event per window")
    return int(count), float(window)


def parse_gc_threshold(text: str) -> tuple[int, ...] | None:
    """``"50000,20,100"`` → ``(50000, 20, 100)``; ``"default"`` → ``None`` (leave the interpreter's values)."""
    value = text.strip().lower()
    if value in {"", "default"}:
        return None
    parts = [p.strip() for p in value.split(",")]
    if not 1 <= len(parts) <= 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"gc_threshold must be 'default' or 1-3 whole numbers like 50000,20,100, not {text!r}")
    numbers = tuple(int(p) for p in parts)
    if numbers[0] == 0:
        raise ValueError("gc_threshold's first value must be > 0 (0 would switch the collector off)")
    return numbers


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="RETAKE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = 8000
    rtmp_port: int = 1935
    rtmp_host: str | None = Field(
        default=None, description="host name put in RTMP URLs; defaults to the public URL's host"
    )
    rtmp_bind: str | None = Field(default=None, description="RTMP bind address; defaults to --host")
    rtmp_enabled: bool = True
    data_dir: Path = Path("./data")
    # Defaults to http://<host>:<port> (http://127.0.0.1:8000 with the default host and port).
    public_url: str = ""
    database_url: str | None = None
    redis_url: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None

    register_rate: str = "5/minute"
    chat_rate: str = "20/10seconds"
    # Clips per user (viewer or agent): each runs ffmpeg over up to 120 s of the recording.
    clip_rate: str = Field(default="3/minute", description="clips a user may make per window")
    # Raids (issue 16): how often one agent may raid, and how long viewers are offered the move before it happens.
    raid_rate: str = Field(default="1/minute", description="raids an agent may start per window")
    raid_delay_seconds: float = Field(default=10.0, ge=0, le=120, description="seconds before raiders are moved")

    platform_handle: str = "retakedottv"
    tweet_verifier: str = "oembed"
    oembed_url: str = "https://publish.twitter.com/oembed"
    oembed_timeout_seconds: float = 10.0

    max_body_bytes: int = 6 * 1024 * 1024
    max_thumbnail_bytes: int = 5 * 1024 * 1024
    # Load shedding (server/overload.py): past this many HTTP requests in progress the node answers 503
    # `overloaded` with Retry-After at once, instead of letting requests queue for a database connection until
    # clients time out. 256 is ~0.1-0.3 s of work for cached comment polls and under a second for uncached
    # reads; a lower limit also refused requests during short CPU stalls a node would absorb. Socket.IO,
    # playback (/live/), /health and /metrics are never counted. 0 = no limit.
    max_inflight_requests: int = Field(default=256, ge=0, description="HTTP requests in progress before 503")
    # How long a request may wait for a pooled database connection before it is answered 503 `overloaded`
    # (SQLAlchemy's own default, 30 s, is long after any client gave up).
    db_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=300)
    db_pool_size: int | None = Field(default=None, ge=1, description="pooled connections (SQLite 5, PostgreSQL 10)")
    db_max_overflow: int | None = Field(default=None, ge=0, description="extra connections (SQLite 10, PostgreSQL 20)")
    # Agent access token -> (agent, user) kept in memory this long (accounts/auth_cache.py). This node forgets an
    # entry at once on token rotation or profile changes; other nodes may accept a rotated token this long.
    # Longer than the agent SDK's 3 s poll interval, or polls would never hit. 0 = off.
    auth_cache_seconds: float = Field(default=10.0, ge=0, le=300)
    # Rendered chat pages kept per node until the chat changes (chat/page_cache.py). With several nodes they
    # must share Redis (--redis-url): a per-chat version there tells every node about the others' writes.
    # max_age bounds staleness when a change notice is ever lost. 0 bytes = off.
    chat_page_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0, description="memory for cached chat pages")
    chat_page_cache_max_age_seconds: float = Field(default=60.0, gt=0, le=3600)
    reconnect_grace_seconds: float = 60.0
    preview_interval_seconds: float = Field(
        default=10.0, ge=0, description="seconds between preview images of a live stream without a thumbnail; 0 = off"
    )
    # Previews after a stream's first are made when somebody looks (home page, live listings, share card, a
    # preview image request), at most every preview_interval_seconds, and otherwise this often; 0 = only then.
    preview_idle_interval_seconds: float = Field(
        default=60.0, ge=0, description="seconds between preview images of a live stream nobody looks at; 0 = none"
    )
    # Stream health (media/health.py): measured from tag sizes per live stream, shown in stream/status and /metrics.
    # A warning is given once the picture is frozen / black or the sound silent this long, or the bitrate has
    # averaged under low_bitrate_kbps for low_bitrate_seconds.
    stream_health: bool = Field(default=True, description="measure the health of live streams")
    stream_health_frozen_seconds: float = Field(default=10.0, gt=0, le=600)
    stream_health_black_seconds: float = Field(default=10.0, gt=0, le=600)
    stream_health_silent_seconds: float = Field(default=15.0, gt=0, le=600)
    stream_health_low_bitrate_kbps: int = Field(default=300, ge=1)
    stream_health_low_bitrate_seconds: int = Field(default=30, ge=1, le=600)
    log_level: str = "info"
    # `retake serve --demo`: a demo agent streams a test picture with a clock and chats (server/demo.py).
    demo: bool = Field(default=False, description="run the demo agent inside the server")

    # Viewer identity: platform JWTs are signed by keys in <data_dir>/keys/ (see identity/jwt_keys.py).
    jwt_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    jwks_url: str | None = Field(default=None, description="JWKS of an external identity provider (e.g. Privy)")
    jwks_audience: str | None = Field(default=None, description="required `aud` of external JWTs, when set")
    jwks_issuer: str | None = Field(default=None, description="required `iss` of external JWTs, when set")
    # LiveKit viewer tokens for /sessions/:id/join/; a platform-owned key/secret is generated when unset.
    livekit_url: str | None = None
    livekit_api_key: str | None = None
    livekit_api_secret: str | None = None

    # Ledger (token-curve.md §7.2): the named curve new tokens launch on, the SOL price behind every USD figure,
    # and the development faucet (POST /api/v1/wallet/airdrop).
    token_config: str = Field(default="A", description="curve config of new tokens: A (default), B, C or D")
    sol_price_usd: float = Field(default=150.0, gt=0, description="USD per SOL for displayed USD values")
    enable_airdrop: bool = Field(default=False, description="allow POST /api/v1/wallet/airdrop (dev and demos)")

    # Realtime (Socket.IO): with redis_url set, nodes share rooms through this Redis pub/sub channel; every
    # client event counts against a per-connection budget before any work is done for it.
    redis_channel: str = Field(default="retake-socketio", min_length=1, description="Redis channel of Socket.IO")
    socket_event_rate: str = Field(default="40/10seconds", description="client events per Socket.IO connection")
    # `retake admin warn|shutdown` actions nudge every node at once (store/nudges.py); this is the safety-net
    # poll for a nudge that was lost.
    operator_poll_seconds: float = Field(default=30.0, gt=0, le=60)
    # WebSocket compression costs a deflate per frame per recipient (a chat line sent to 1,000 viewers is
    # compressed 1,000 times, with per-connection state) and gains nothing on video (WS-FLV); off by default.
    ws_per_message_deflate: bool = Field(default=False, description="offer permessage-deflate on WebSockets")
    # A viewer whose socket cannot take more than this many unsent bytes is disconnected (its client reconnects
    # and reads history) instead of the node buffering for it without bound.
    ws_max_buffered_bytes: int = Field(default=4 * 1024 * 1024, ge=64 * 1024)

    # Python's cyclic garbage collector: a chat line to 1,000 sockets allocates tens of thousands of objects, so
    # the default generation-0 threshold (700) runs a collection every few microseconds of work; see
    # server/gc_tuning.py and docs/benchmarks.md. "default" keeps the interpreter's settings.
    gc_threshold: str = Field(default="50000,20,100", description="gc.set_threshold values, or 'default'")
    gc_freeze: bool = Field(default=True, description="gc.freeze() once the app is built")

    # RTMP admission (ingest/admission.py): connections open at once, in all and from one address. When the
    # node is full, an idle connection that has not been authorized is closed to make room for a new one.
    rtmp_max_connections: int = Field(default=256, ge=1, description="RTMP connections open at once")
    rtmp_max_connections_per_ip: int = Field(default=8, ge=1, description="RTMP connections from one address")
    # A publishing connection's socket is read at most once per this many ms (ingest/input_path.py): the messages
    # of that time come in one read and one wake-up of the process, shared by every publisher. 0: every arrival.
    # 40, not 30: 10 streams 1.26x nginx-rtmp's CPU instead of 1.89x (one run each), delay p95 +39 ms (goal +50),
    # watch-page FLV p95 314 ms instead of 289 (goal 400); docs/benchmarks.md, "The merge of 2026-12-03".
    rtmp_read_coalesce_ms: int = Field(default=40, ge=0, le=200, description="RTMP media read tick, in ms")

    # HTTP admission (server/admission.py, server/http_protocol.py): a client gets this long to send a request's
    # line and headers, and as long again plus one second per `min_body_rate` bytes for its body; slower requests
    # are answered 408 and their connection closed, so slow senders cannot keep a slot.
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    min_body_rate: int = Field(default=8 * 1024, ge=1, description="bytes per second a request body must keep up")
    max_header_bytes: int = Field(default=16 * 1024, ge=1024, description="request line and headers, in bytes")
    max_headers: int = Field(default=100, ge=8)
    # Idle keep-alive connections are closed after this long without a new request.
    keep_alive_seconds: int = Field(default=5, ge=1, le=300)
    # At most this many HTTP requests of one client address in progress (the same requests the global
    # max_inflight_requests counts); more are answered 429 with Retry-After. Loopback peers are exempt (this
    # machine: a local proxy or load generator stands for many clients). 0 = no per-address limit.
    max_inflight_per_ip: int = Field(default=64, ge=0)
    # Comma-separated addresses or CIDR ranges of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto
    # are believed; from any other peer those headers are ignored. Empty = none.
    trusted_proxies: str = ""
    # JSON request bodies nested deeper than this are answered 400 `invalid_json` before any parser sees them.
    max_json_depth: int = Field(default=64, ge=2, le=500)
    # Socket.IO: an Engine.IO session that has not joined a namespace (CONNECT) this long after opening is closed.
    socket_connect_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    # Uploaded images are decoded and re-encoded in this many worker threads, off the event loop; at most
    # image_queue uploads wait for a worker, more are answered 503 `overloaded`. Larger images are refused 413.
    image_workers: int = Field(default=2, ge=1, le=64)
    image_queue: int = Field(default=8, ge=0)
    max_image_pixels: int = Field(default=16_000_000, ge=1)
    # `retake serve --workers N` (server/supervisor.py): N processes share the HTTP and RTMP ports (SO_REUSEPORT,
    # Linux) and each also listens on a port of its own, worker_port_base + its index (default: port + 1 …). That
    # address is the worker's media node: playback of a stream is redirected (307) to the worker holding its
    # publisher, so it must reach that worker from a viewer's browser. Behind a proxy, worker_url_template gives
    # the URL instead, with {index} and {port} filled in (e.g. "https://w{index}.example.com"). worker_index is
    # set by the supervisor in each worker's environment, never by hand.
    workers: str = Field(default="1", description="worker processes: a number, or 'auto' for one per core")
    worker_port_base: int | None = Field(default=None, ge=1, le=65535, description="first worker's own HTTP port")
    worker_url_template: str = Field(default="", description="public URL of worker {index} on port {port}")
    worker_index: int | None = Field(default=None, ge=0)

    # Restream (restream/): destinations on loopback or private addresses are refused unless this is set.
    restream_allow_private: bool = Field(default=False, description="allow restreams to private/loopback addresses")

    # Push to agents (webhooks/): targets on loopback, private or link-local addresses are refused unless this is
    # set (tests and single-machine setups). Retry schedule: back-off doubles from base up to max, for
    # retry_seconds per event; an endpoint failing for disable_after_seconds is disabled.
    webhook_allow_private: bool = Field(default=False, description="allow webhooks to private/loopback addresses")
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    webhook_retry_seconds: float = Field(default=24 * 3600.0, gt=0)
    webhook_disable_after_seconds: float = Field(default=3 * 24 * 3600.0, gt=0)
    webhook_lease_seconds: float = Field(default=30.0, gt=5, description="a claimed delivery is re-claimed after")
    webhook_poll_seconds: float = Field(default=30.0, gt=0, description="safety-net poll for other nodes' rows")

    @field_validator("socket_event_rate")
    @classmethod
    def _valid_socket_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @field_validator("gc_threshold")
    @classmethod
    def _valid_gc_threshold(cls, value: str) -> str:
        parse_gc_threshold(value)
        return value

    @field_validator("token_config")
    @classmethod
    def _known_token_config(cls, value: str) -> str:
        if value.upper() not in TOKEN_CONFIG_NAMES:
            raise ValueError(f"token_config must be one of {', '.join(sorted(TOKEN_CONFIG_NAMES))}")
        return value.upper()

    @field_validator("register_rate", "chat_rate", "clip_rate", "raid_rate")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        parse_rate(value)
        return value

    @model_validator(mode="after")
    def _default_public_url(self) -> Settings:
        if not self.public_url:
            host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host
            self.public_url = f"http://{host}:{self.port}"
        return self

    @field_validator("public_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        if not value:
            return value
        parts = urlsplit(value)
        if parts.scheme not in {"http", "https"} or not parts.netloc:
            raise ValueError("public_url must be an http(s) URL")
        return value.rstrip("/")

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'retake.db').resolve()}"

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    @property
    def rtmp_url(self) -> str:
        """The ingest URL handed to agents (the key is appended by the encoder)."""
        host = self.rtmp_host or urlsplit(self.public_url).hostname or "127.0.0.1"
        scheme = "rtmps" if self.tls_enabled else "rtmp"
        return f"{scheme}://{host}:{self.rtmp_port}/live"

    def tls_context(self) -> ssl.SSLContext | None:
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls_cert, self.tls_key)
        return context

    @property
    def api_base(self) -> str:
        return f"{self.public_url}/api/v1"

    @field_validator("workers")
    @classmethod
    def _valid_workers(cls, value: str) -> str:
        text = value.strip().lower()
        if text != "auto" and not (text.isdigit() and 1 <= int(text) <= 256):
            raise ValueError(f"workers must be a number from 1 to 256 or 'auto', not {value!r}")
        return text

    @property
    def worker_count(self) -> int:
        return (os.cpu_count() or 1) if self.workers == "auto" else int(self.workers)

    def worker_port(self, index: int) -> int:
        return (self.worker_port_base or self.port + 1) + index

    def worker_url(self, index: int) -> str:
        """The address of worker ``index`` that playback redirects send viewers to."""
        port = self.worker_port(index)
        if self.worker_url_template:
            return self.worker_url_template.format(index=index, port=port).rstrip("/")
        parts = urlsplit(self.public_url)
        host = parts.hostname or "127.0.0.1"
        host = f"[{host}]" if ":" in host else host
        return f"{parts.scheme}://{host}:{port}"

    @property
    def node_url(self) -> str:
        """This process's media node address: its worker URL under ``--workers``, else the public URL."""
        return self.public_url if self.worker_index is None else self.worker_url(self.worker_index)
