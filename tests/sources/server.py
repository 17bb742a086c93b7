"""A local HTTP server (aiohttp, 127.0.0.1, its own thread) serving the source fixtures.

Runs in a background thread with its own event loop, so sync tests (the CLI
through CliRunner) and async tests alike can use it. Tests change what it
serves through plain attributes (``tickers``, ``slow_s``, ``feeds``).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

FIXTURES = Path(__file__).parent / "fixtures"

ROBOTS = "User-agent: *\nDisallow: /private/\n"


@dataclass
class Hit:
    path: str
    headers: dict[str, str]


@dataclass
class FixtureServer:
    host: str = "127.0.0.1"
    port: int = 0
    slow_s: float = 5.0
    hits: list[Hit] = field(default_factory=list)
    tickers: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # name -> (body, content type)
    feeds: dict[str, tuple[bytes, str]] = field(default_factory=dict)  # extra feeds set by tests
    use_etag: bool = True
    flaky: int = 0  # /flaky/{page} answers 503 this many times, then serves the page

    @property
    def base(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base + path

    def count(self, path: str) -> int:
        return sum(1 for h in self.hits if h.path == path)

    # ------------------------------------------------------------ handlers

    def _fixture(self, name: str) -> bytes:
        data = (FIXTURES / name).read_bytes()
        return data.replace(b"{base}", self.base.encode())

    def _conditional(self, request: web.Request, body: bytes, content_type: str) -> web.Response:
        etag = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        headers = {"ETag": etag, "Last-Modified": "Wed, 01 May 2024 10:00:00 GMT"} if self.use_etag else {}
        if self.use_etag and request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, headers={**headers, "Content-Type": content_type})

    async def feed(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name in self.feeds:
            body, ctype = self.feeds[name]
            return self._conditional(request, body, ctype)
        path = FIXTURES / name
        if not path.is_file():
            raise web.HTTPNotFound()
        ctype = "application/atom+xml" if name.endswith(".atom.xml") else "application/rss+xml; charset=utf-8"
        return self._conditional(request, self._fixture(name), ctype)

    async def page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not (FIXTURES / name).is_file():
            raise web.HTTPNotFound()
        ctype = {"cp1256.html": "text/html; charset=windows-1256", "badbytes.html": "text/html"}.get(
            name, "text/html; charset=utf-8"
        )
        return web.Response(body=self._fixture(name), headers={"Content-Type": ctype})

    async def ticker(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in self.tickers:
            raise web.HTTPNotFound()
        body, ctype = self.tickers[name]
        return self._conditional(request, body, ctype)

    async def huge(self, request: web.Request) -> web.StreamResponse:
        """20 MB of HTML, streamed without a Content-Length."""
        resp = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        chunk = b"<p>" + "نص ".encode() * 20000 + b"</p>\n"
        try:
            sent = 0
            while sent < 20 * 1024 * 1024:
                await resp.write(chunk)
                sent += len(chunk)
            await resp.write_eof()
        except (ConnectionError, asyncio.CancelledError):
            pass
        return resp

    async def loop(self, request: web.Request) -> web.StreamResponse:
        target = "/bad/loop2" if request.path == "/bad/loop" else "/bad/loop"
        raise web.HTTPFound(target)

    async def slow(self, request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(self.slow_s)
        return web.Response(body=self._fixture("ar.rss.xml"), headers={"Content-Type": "application/rss+xml"})

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPFound(request.query["to"])

    async def flaky_page(self, request: web.Request) -> web.StreamResponse:
        if self.flaky > 0:
            self.flaky -= 1
            raise web.HTTPServiceUnavailable(text="try later")
        return await self.page(request)

    async def dead(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPInternalServerError(text="feed backend down")

    async def robots(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=ROBOTS)

    async def private(self, request: web.Request) -> web.StreamResponse:
        return web.Response(body=self._fixture("en-1.html"), headers={"Content-Type": "text/html"})

    @web.middleware
    async def record(self, request: web.Request, handler):  # type: ignore[no-untyped-def]
        self.hits.append(Hit(request.path, dict(request.headers)))
        return await handler(request)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.record])
        app.router.add_get("/feeds/{name}", self.feed)
        app.router.add_get("/pages/{name}", self.page)
        app.router.add_get("/ticker/{name}", self.ticker)
        app.router.add_get("/bad/huge", self.huge)
        app.router.add_get("/bad/loop", self.loop)
        app.router.add_get("/bad/loop2", self.loop)
        app.router.add_get("/slow/feed.xml", self.slow)
        app.router.add_get("/dead/feed.xml", self.dead)
        app.router.add_get("/flaky/{name}", self.flaky_page)
        app.router.add_get("/redirect", self.redirect)
        app.router.add_get("/robots.txt", self.robots)
        app.router.add_get("/private/{name}", self.private)
        return app

    # ------------------------------------------------------------ lifecycle

    def start(self) -> FixtureServer:
        ready = threading.Event()
        self._loop = asyncio.new_event_loop()

        async def serve() -> None:
            self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.host, self.port)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()

        def run() -> None:
            asyncio.set_event_loop(self._loop)
            self._loop.run_until_complete(serve())
            self._loop.run_forever()

        self._thread = threading.Thread(target=run, name="fixture-http", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fixture server did not start")
        return self

    def stop(self) -> None:
        fut = asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop)
        try:
            fut.result(5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)
