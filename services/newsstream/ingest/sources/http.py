"""The shared, polite HTTP fetcher.

One :class:`Fetcher` serves every source of a process:

* a per-host concurrency limit (a semaphore per host:port),
* a timeout per request and a ``User-Agent`` naming newsstream,
* robots.txt respected for page fetches (RFC 9309: 4xx means no rules,
  5xx or unreachable means "do not crawl" until it is fetched again),
* conditional GET (``If-None-Match`` / ``If-Modified-Since``; 304 is a result),
* redirects followed by hand, so that a loop and a long chain are errors with
  their own kind, and a body-size limit enforced while reading (a 20 MB page
  or a gzip bomb stops at the limit instead of filling memory).

Every failure is a :class:`FetchError` with a short ``kind`` (used as the
metrics label and the dead letter's reason), never a bare exception.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import aiohttp
from multidict import CIMultiDictProxy

from newsstream.errors import InfrastructureError
from newsstream.ingest.sources.urls import host_of

DEFAULT_USER_AGENT = "newsstream/0.1 (+https://github.com/newsstream; news ingestion bot)"
ROBOTS_AGENT = "newsstream"
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization", "x-api-key", "api-key", "x-auth-token"})


class FetchError(InfrastructureError):
    """A fetch that produced no usable response. ``kind`` is a short stable label."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, url: str | None = None) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind
        self.message = message
        self.status = status
        self.url = url


@dataclass
class FetchResult:
    url: str  # the final URL, after redirects
    status: int
    body: bytes
    headers: CIMultiDictProxy[str] | dict[str, str]
    elapsed_s: float
    redirects: list[str] = field(default_factory=list)

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("ETag")

    @property
    def last_modified(self) -> str | None:
        return self.headers.get("Last-Modified")

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0].strip().lower()

    @property
    def charset(self) -> str | None:
        for part in self.headers.get("Content-Type", "").split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None


@dataclass
class _Robots:
    parser: RobotFileParser | None  # None: disallow everything (robots.txt unreachable)
    expires: float


class Fetcher:
    """``async with Fetcher() as f: await f.get(url)``."""

    def __init__(
        self,
        *,
        user_agent: str = DEFAULT_USER_AGENT,
        timeout_s: float = 20.0,
        per_host_concurrency: int = 2,
        max_bytes: int = 10 * 1024 * 1024,
        max_redirects: int = 5,
        respect_robots: bool = True,
        robots_ttl_s: float = 3600.0,
    ) -> None:
        self.user_agent = user_agent
        self.timeout_s = timeout_s
        self.per_host_concurrency = per_host_concurrency
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.respect_robots = respect_robots
        self.robots_ttl_s = robots_ttl_s
        self._session: aiohttp.ClientSession | None = None
        self._host_limits: dict[str, asyncio.Semaphore] = defaultdict(lambda: asyncio.Semaphore(self.per_host_concurrency))
        self._robots: dict[str, _Robots] = {}
        self._robots_locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)

    async def __aenter__(self) -> Fetcher:
        self._session = aiohttp.ClientSession(
            headers={"User-Agent": self.user_agent, "Accept-Encoding": "gzip, deflate"},
            timeout=aiohttp.ClientTimeout(total=self.timeout_s, sock_connect=min(self.timeout_s, 10.0)),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        headers: dict[str, str] | None = None,
        check_robots: bool = False,
        max_bytes: int | None = None,
    ) -> FetchResult:
        """GET with redirects, limits and validators. Raises :class:`FetchError`."""
        assert self._session is not None, "use Fetcher as an async context manager"
        request_headers = dict(headers or {})
        if etag:
            request_headers["If-None-Match"] = etag
        if last_modified:
            request_headers["If-Modified-Since"] = last_modified
        limit = max_bytes or self.max_bytes
        started = time.monotonic()
        visited: list[str] = []
        current = url
        while True:
            if urlsplit(current).scheme not in ("http", "https"):
                raise FetchError("bad_url", f"not an http(s) URL: {current!r}", url=url)
            if current in visited:
                raise FetchError("redirect_loop", " -> ".join([*visited, current]), url=url)
            if len(visited) > self.max_redirects:
                raise FetchError("too_many_redirects", f"more than {self.max_redirects} redirects", url=url)
            visited.append(current)
            if check_robots and self.respect_robots and not await self.allowed(current):
                raise FetchError("robots_disallowed", f"robots.txt disallows {current}", url=url)
            status, body, resp_headers, location = await self._one(current, request_headers, limit)
            if status in REDIRECT_STATUSES and location:
                target = urljoin(current, location)
                if host_of(target) != host_of(current):
                    # Never carry credentials to another host.
                    request_headers = {k: v for k, v in request_headers.items() if k.lower() not in SECRET_HEADERS}
                current = target
                continue
            elapsed = time.monotonic() - started
            if status == 304 or 200 <= status < 300:
                return FetchResult(current, status, body, resp_headers, elapsed, visited[:-1])
            raise FetchError("http_status", f"HTTP {status} from {current}", status=status, url=url)

    async def _one(
        self, url: str, headers: dict[str, str], limit: int
    ) -> tuple[int, bytes, CIMultiDictProxy[str], str | None]:
        assert self._session is not None
        async with self._host_limits[host_of(url)]:
            try:
                async with self._session.get(url, headers=headers, allow_redirects=False) as resp:
                    length = resp.content_length
                    if length is not None and length > limit:
                        raise FetchError("too_large", f"Content-Length {length} > limit {limit}", url=url)
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in resp.content.iter_chunked(64 * 1024):
                        size += len(chunk)
                        if size > limit:
                            raise FetchError("too_large", f"body larger than the limit of {limit} bytes", url=url)
                        chunks.append(chunk)
                    return resp.status, b"".join(chunks), resp.headers, resp.headers.get("Location")
            except FetchError:
                raise
            except TimeoutError:
                raise FetchError("timeout", f"no complete answer within {self.timeout_s}s", url=url) from None
            except aiohttp.ClientResponseError as exc:
                raise FetchError("http_error", str(exc), url=url) from None
            except (aiohttp.ClientError, OSError) as exc:
                raise FetchError("connection", f"{type(exc).__name__}: {exc}", url=url) from None

    # ------------------------------------------------------------------ robots.txt

    async def allowed(self, url: str) -> bool:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        async with self._robots_locks[origin]:
            entry = self._robots.get(origin)
            if entry is None or entry.expires < time.monotonic():
                entry = await self._load_robots(origin)
                self._robots[origin] = entry
        return entry.parser is not None and entry.parser.can_fetch(ROBOTS_AGENT, url)

    async def _load_robots(self, origin: str) -> _Robots:
        parser = RobotFileParser(origin + "/robots.txt")
        try:
            result = await self.get(origin + "/robots.txt", max_bytes=512 * 1024)
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500:
                parser.parse([])  # no robots.txt: everything allowed
                return _Robots(parser, time.monotonic() + self.robots_ttl_s)
            # 5xx or unreachable: RFC 9309 says assume complete disallow; retry soon.
            return _Robots(None, time.monotonic() + min(self.robots_ttl_s, 60.0))
        parser.parse(result.body.decode("utf-8", errors="replace").splitlines())
        return _Robots(parser, time.monotonic() + self.robots_ttl_s)
