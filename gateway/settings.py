"""One frozen Settings object, built from environment and flags at start-up and passed down."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path


class SettingsError(ValueError):
    """A configuration value that cannot be used; the message names it."""


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str | None = None
    data_dir: Path = Path(".scim-gateway")
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # Seconds in-flight requests get to finish after SIGTERM.
    shutdown_timeout: float = 10.0
    max_body_bytes: int = 1024 * 1024
    default_page_size: int = 100
    max_page_size: int = 1000
    pool_min_size: int = 2
    pool_max_size: int = 16
    # Seconds one query may take, and one request in all, before the answer is 503.
    db_timeout: float = 5.0
    request_timeout: float = 10.0
    # Per token; 0 turns the limit off.
    rate_limit_per_second: float = 500.0
    rate_limit_burst: int = 1000
    log_level: str = "info"
    access_log: bool = True
    # Seconds a valid token stays cached; revocations clear it at once (0: no cache).
    token_cache_seconds: float = 10.0
    # First wait before re-opening the connection that hears revocations (doubling up to 5 s);
    # while it is down the token cache is bypassed.
    revocation_retry_seconds: float = 0.1
    # Behind a TLS-terminating proxy: build meta.location from X-Forwarded-Proto/-Host.
    trust_forwarded_headers: bool = False
    # Run the audit projector in this process (any number may: they take turns per batch).
    background_projector: bool = True
    # Seal the log (docs/integrity.md) in this process's background projector.
    sealing: bool = True
    # A tenant's Merkle root is signed after this many new events, or this many seconds.
    checkpoint_events: int = 1000
    checkpoint_seconds: float = 60.0
    # The Ed25519 checkpoint signing key; unset: <data_dir>/checkpoint-signing.key, made on first use.
    signing_key_file: Path | None = None
    # Hours a create whose answer was lost can be retried and answered as the original.
    create_replay_window_hours: float = 24.0
    # Admin console sessions: ended after this many idle minutes, and this many hours after sign-in.
    console_idle_minutes: int = 30
    console_absolute_hours: int = 12
    # A listener of its own for the admin console (0: the console shares the API's port).
    # When set, /admin/ answers only there and the API only on ``port``.
    console_port: int = 0
    console_host: str | None = None  # default: ``host``
    # ``serve`` applies pending migrations at start; false (or ``serve --no-migrate``) for an
    # application role that may not change the schema: it then refuses to start on an old one.
    migrate: bool = True
    # On first start with no tenant, create tenant ``default`` and print a token for it;
    # false keeps secrets out of container logs (create tenants and tokens with the CLI).
    bootstrap: bool = True
    # ``db migrate`` grants this role the application's privileges (gateway/roles.py).
    app_role: str | None = None
    # The key-encryption key (docs/privacy.md); unset: <data_dir>/kek.key, made on first use.
    kek_file: Path | None = None
    # Or the key itself (base64), for platforms that hand secrets over as environment variables.
    kek: str | None = dataclasses.field(default=None, repr=False)
    # Days a refused create's personal values stay readable (its rolling key is then shredded).
    refused_key_days: int = 30
    # More databases for tenants, ``name=dsn;name=dsn`` (eventstore/directory.py); none by default.
    shards: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise SettingsError(f"port must be between 1 and 65535, not {self.port}")
        if not 1 <= self.workers <= 64:
            raise SettingsError(f"workers must be between 1 and 64, not {self.workers}")
        if self.shutdown_timeout < 0:
            raise SettingsError("shutdown_timeout must not be negative")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes must be at least 1024")
        if not 0 < self.default_page_size <= self.max_page_size:
            raise SettingsError("default_page_size must be between 1 and max_page_size")
        if not 0 < self.pool_min_size <= self.pool_max_size:
            raise SettingsError("pool_min_size must be between 1 and pool_max_size")
        if self.db_timeout <= 0 or self.request_timeout <= 0:
            raise SettingsError("db_timeout and request_timeout must be positive")
        if self.token_cache_seconds < 0:
            raise SettingsError("token_cache_seconds must not be negative")
        if self.revocation_retry_seconds <= 0:
            raise SettingsError("revocation_retry_seconds must be positive")
        if self.rate_limit_per_second < 0 or self.rate_limit_burst < 1:
            raise SettingsError("rate_limit_per_second must be >= 0 and rate_limit_burst >= 1")
        if self.checkpoint_events < 1 or not 0 < self.checkpoint_seconds <= 86_400:
            raise SettingsError("checkpoint_events must be >= 1 and checkpoint_seconds between 0 and 86400")
        if self.kek is not None and self.kek_file is not None:
            raise SettingsError("set SCIM_GATEWAY_KEK or SCIM_GATEWAY_KEK_FILE, not both")
        if self.refused_key_days < 1:
            raise SettingsError("refused_key_days must be at least 1")
        if self.create_replay_window_hours < 0:
            raise SettingsError("create_replay_window_hours must not be negative")
        if not 0 <= self.console_port < 65536 or self.console_port == self.port:
            raise SettingsError("console_port must be 0 (shared) or another port between 1 and 65535")
        if not 1 <= self.console_idle_minutes <= 24 * 60 or not 1 <= self.console_absolute_hours <= 24 * 7:
            raise SettingsError("console_idle_minutes must be 1..1440 and console_absolute_hours 1..168")
        if self.app_role is not None and not re.match(r"^[a-z_][a-z0-9_]{0,62}$", self.app_role):
            raise SettingsError(f"app_role {self.app_role!r} must be lower-case letters, digits and '_'")
        if self.log_level not in ("debug", "info", "warning", "error"):
            raise SettingsError(f"log_level must be debug, info, warning or error, not {self.log_level!r}")


ENV_PREFIX = "SCIM_GATEWAY_"


def _convert(name: str, kind: type, text: str) -> object:
    try:
        if kind is bool:
            lowered = text.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(text)
            return lowered in ("1", "true", "yes", "on")
        return kind(text)
    except ValueError:
        raise SettingsError(f"{ENV_PREFIX}{name.upper()}: cannot read {text!r}") from None


def _from_file(environ: Mapping[str, str], name: str, text: str | None) -> str | None:
    """``SCIM_GATEWAY_<NAME>_FILE``: the value is the file's content, the convention of Docker
    and Kubernetes secrets and of systemd's LoadCredential=, so a secret such as the database
    URL is in no environment a process listing or a crash report shows."""
    variable = f"{ENV_PREFIX}{name.upper()}_FILE"
    path = environ.get(variable)
    if not path:
        return text
    if text not in (None, ""):
        raise SettingsError(f"set {ENV_PREFIX}{name.upper()} or {variable}, not both")
    try:
        return Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as error:
        raise SettingsError(f"{variable}: cannot read {path}: {getattr(error, 'strerror', None) or error}") from None


def load_settings(environ: Mapping[str, str] | None = None, **flags: object) -> Settings:
    """Environment (``SCIM_GATEWAY_<NAME>``) first, then flags given on the command line."""
    environ = os.environ if environ is None else environ
    kinds = {"database_url": str, "data_dir": Path, "host": str, "port": int, "workers": int,
             "shutdown_timeout": float,
             "max_body_bytes": int, "default_page_size": int, "max_page_size": int,
             "pool_min_size": int, "pool_max_size": int, "db_timeout": float, "request_timeout": float,
             "rate_limit_per_second": float, "rate_limit_burst": int,
             "log_level": str, "access_log": bool, "background_projector": bool, "trust_forwarded_headers": bool,
             "token_cache_seconds": float, "create_replay_window_hours": float,
             "revocation_retry_seconds": float, "console_idle_minutes": int, "console_absolute_hours": int,
             "console_port": int, "console_host": str, "migrate": bool, "bootstrap": bool, "app_role": str,
             "sealing": bool, "checkpoint_events": int, "checkpoint_seconds": float, "signing_key_file": Path,
             "kek_file": Path, "kek": str, "refused_key_days": int, "shards": str}
    values: dict[str, object] = {}
    for field in fields(Settings):
        text = environ.get(ENV_PREFIX + field.name.upper())
        text = _from_file(environ, field.name, text)
        if text not in (None, ""):
            values[field.name] = _convert(field.name, kinds[field.name], text)
        if flags.get(field.name) is not None:
            values[field.name] = flags[field.name]
    return Settings(**values)  # type: ignore[arg-type]
