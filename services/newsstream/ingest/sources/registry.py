"""The source registry: one TOML file naming every source, its fetch policy and the push tokens.

Credentials are never written in the file: a source's ``auth`` and a push
token name an *environment variable* (``env = "ALMAYADEEN_TOKEN"``) whose
value is read when the service starts. Inline secrets (an ``Authorization``
header, a ``token = "..."`` key) are rejected by validation. See
``deploy/sources.example.toml`` and ``docs/sources.md``.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from newsstream.errors import ConfigError
from newsstream.ingest.sources.base import Source, SourceKind
from newsstream.ingest.sources.http import DEFAULT_USER_AGENT
from newsstream.ingest.sources.push import PushClient, PushConfig

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SECRET_HEADERS = {"authorization", "cookie", "x-api-key", "api-key", "proxy-authorization", "x-auth-token"}


class RegistryError(ConfigError):
    """The source registry (TOML) is invalid or names an unset environment variable."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        raise ValueError(f"{value!r} is not an environment variable name (credentials are referenced, never inline)")
    return value


class AuthConfig(_Model):
    type: Literal["bearer", "basic", "header"] = "bearer"
    env: str = Field(description="Environment variable holding the token or password.")
    username_env: str | None = Field(default=None, description="basic: variable holding the user name.")
    header: str | None = Field(default=None, description="header: the header name, e.g. X-Api-Key.")

    _check_env = field_validator("env", "username_env")(lambda v: v if v is None else _env_name(v))

    @model_validator(mode="after")
    def _complete(self) -> AuthConfig:
        if self.type == "basic" and not self.username_env:
            raise ValueError("basic auth needs username_env")
        if self.type == "header" and not self.header:
            raise ValueError("header auth needs header (the header's name)")
        return self

    def headers(self, environ: Mapping[str, str]) -> dict[str, str]:
        missing = [v for v in (self.env, self.username_env) if v and not environ.get(v)]
        if missing:
            raise RegistryError(f"environment variable(s) not set: {', '.join(missing)}")
        secret = environ[self.env]
        if self.type == "bearer":
            return {"Authorization": f"Bearer {secret}"}
        if self.type == "basic":
            import base64

            pair = f"{environ[self.username_env or '']}:{secret}".encode()
            return {"Authorization": "Basic " + base64.b64encode(pair).decode()}
        return {self.header or "": secret}


class SourceConfig(_Model):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Also the metrics label.")
    kind: SourceKind
    url: str = Field(pattern=r"^https?://")
    language: str | None = Field(default=None, pattern=r"^[a-z]{2,3}$")
    tz: str = "UTC"
    interval_s: float = Field(default=300.0, gt=0)
    follow: bool = True
    max_items: int = Field(default=200, ge=1)
    enabled: bool = True
    headers: dict[str, str] = Field(default_factory=dict, description="Extra non-secret request headers.")
    auth: AuthConfig | None = None

    @field_validator("tz")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("headers")
    @classmethod
    def _no_inline_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        secret = sorted(h for h in value if h.lower() in _SECRET_HEADERS)
        if secret:
            raise ValueError(f"header(s) {secret} carry credentials: use [sources.auth] with env = \"VAR\"")
        return value

    def to_source(self, environ: Mapping[str, str] | None = None) -> Source:
        headers = dict(self.headers)
        if self.auth is not None:
            headers.update(self.auth.headers(os.environ if environ is None else environ))
        return Source(
            name=self.name, kind=self.kind, url=self.url, language=self.language, tz=ZoneInfo(self.tz),
            interval_s=self.interval_s, follow=self.follow, headers=headers, max_items=self.max_items,
        )


class FetchConfig(_Model):
    user_agent: str = DEFAULT_USER_AGENT
    timeout_s: float = Field(default=20.0, gt=0)
    per_host_concurrency: int = Field(default=2, ge=1)
    max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_redirects: int = Field(default=5, ge=0)
    respect_robots: bool = True
    max_backoff_s: float = Field(default=900.0, gt=0)


class PushTokenConfig(_Model):
    name: str
    token_env: str
    sources: list[str] | None = None
    kinds: list[Literal["article", "ticker"]] = ["article", "ticker"]

    _check_env = field_validator("token_env")(lambda v: _env_name(v))


class PushSection(_Model):
    host: str = "0.0.0.0"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_items: int = Field(default=500, ge=1)
    body_timeout_s: float = Field(default=30.0, gt=0, description="A request body still incomplete after this is answered 408.")
    tokens: list[PushTokenConfig] = Field(default_factory=list)

    def to_config(self, environ: Mapping[str, str] | None = None) -> PushConfig:
        env = os.environ if environ is None else environ
        missing = [t.token_env for t in self.tokens if not env.get(t.token_env)]
        if missing:
            raise RegistryError(f"push token variable(s) not set: {', '.join(missing)}")
        tokens = {
            env[t.token_env]: PushClient(t.name, frozenset(t.sources) if t.sources is not None else None, frozenset(t.kinds))
            for t in self.tokens
        }
        return PushConfig(tokens=tokens, max_body_bytes=self.max_body_bytes, max_items=self.max_items,
                          body_timeout_s=self.body_timeout_s)


class Registry(_Model):
    state: str = Field(default=".newsstream/sources.sqlite", description="SQLite file of seen items and validators.")
    seen_retention_days: float = Field(default=30.0, gt=0, description="How long seen items are remembered.")
    fetch: FetchConfig = FetchConfig()
    push: PushSection = PushSection()
    sources: list[SourceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Registry:
        names = [s.name for s in self.sources]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate source name(s): {dup}")
        return self

    def enabled_sources(self, environ: Mapping[str, str] | None = None) -> list[Source]:
        return [s.to_source(environ) for s in self.sources if s.enabled]


def parse_registry(text: str) -> Registry:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RegistryError(f"not valid TOML: {exc}") from None
    try:
        return Registry.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()[:20]
        ]
        raise RegistryError("invalid source registry:\n" + "\n".join(lines)) from None


def load_registry(path: str | Path) -> Registry:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read {path}: {exc}") from None
    return parse_registry(text)
