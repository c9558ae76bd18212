"""Settings: read from `.env`, the environment and the command line, checked once at start-up."""

from __future__ import annotations

import io
import ipaddress
import socket
from collections.abc import Callable, Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from autohome.durations import DURATION_HELP, MAX_DURATION, format_duration, parse_duration
from autohome.errors import ConfigError

PUSHOVER_MESSAGES_URL = "https://api.pushover.net/1/messages.json"


# The design's console port, and where the console goes when 23 needs rights the user lacks.
CONSOLE_PORT, FALLBACK_CONSOLE_PORT = 23, 2323


class Config(NamedTuple):
    """Every setting AutoHome reads, with its default. (A NamedTuple rather than a frozen
    dataclass: importing dataclasses slows start-up; see docs/performance.md.)"""

    modules_dir: Path = Path("modules")
    log_dir: Path = Path("logs")
    data_dir: Path = Path("data")
    tick: timedelta = timedelta(seconds=30)
    max_threads: int = 8
    shutdown_grace: timedelta = timedelta(seconds=10)
    module_timeout: timedelta = timedelta(minutes=10)
    isolation: str = "thread"
    stop_grace: timedelta = timedelta(seconds=5)
    import_timeout: timedelta = timedelta(seconds=10)
    timezone: str = ""
    console_host: str = "127.0.0.1"
    console_port: int = CONSOLE_PORT
    console_port_given: bool = False  # set by .env, the environment or --port: never replaced
    console_enabled: bool = True
    log_max_mb: float = 10.0
    log_keep: int = 20
    console_password: str = ""
    console_max_line: int = 4096
    console_max_clients: int = 8
    console_idle: timedelta = timedelta(minutes=10)
    console_login: timedelta = timedelta(seconds=30)
    web_enabled: bool = True  # the status page
    web_host: str = "127.0.0.1"
    web_port: int = 8023
    log_level: str = "INFO"
    pushover_token: str = ""
    pushover_user: str = ""
    pushover_api_url: str = PUSHOVER_MESSAGES_URL
    notify_on_failure: bool = True
    network_probe: tuple[str, int] | None = ("1.1.1.1", 443)  # None: always online
    wake_network_wait: timedelta = timedelta(minutes=2)
    ping_url: str = ""  # a Healthchecks check AutoHome pings while it runs
    notify_urls: tuple[tuple[str, str], ...] = ()  # (name, Apprise URL) per channel beside Pushover
    quiet_hours: str = ""  # "22:00-07:00": priority 0 and below wait for its end
    notify_max_per_hour: int = 20  # per module; the rest folded into one summary
    notify_pace: float | None = None  # seconds between two messages on one Apprise channel
    env_file: Path | None = None
    # Every setting as text (.env, then the environment, then flags): what modules read.
    settings: Mapping[str, str] = MappingProxyType({})

    @property
    def has_pushover(self) -> bool:
        """Whether both Pushover keys are set."""
        return bool(self.pushover_token and self.pushover_user)

    def __repr__(self) -> str:
        """The settings, without the password, the keys and the settings' text."""
        hidden = {"console_password", "pushover_token", "pushover_user", "settings", "notify_urls"}
        shown = ", ".join(f"{name}={value!r}" for name, value in self._asdict().items() if name not in hidden)
        return f"Config({shown})"


def _path(text: str) -> Path:
    if not text.strip():
        raise ValueError("expected a folder path")
    return Path(text.strip())


def _duration(low: timedelta, high: timedelta = MAX_DURATION) -> Callable[[str], timedelta]:
    """A duration parser that also holds the value to a range."""
    allowed = f"from {format_duration(low)} to {format_duration(high)}"

    def parse(text: str) -> timedelta:
        try:
            value = parse_duration(text)
        except ValueError:
            raise ValueError(f"expected {DURATION_HELP}, {allowed}") from None
        if not low <= value <= high:
            raise ValueError(f"expected a duration {allowed}")
        return value

    return parse


_SECOND, _DAY = timedelta(seconds=1), timedelta(days=1)


def _whole_number(low: int, high: int | None = None) -> Callable[[str], int]:
    def parse(text: str) -> int:
        allowed = f"a whole number from {low} to {high}" if high else f"a whole number >= {low}"
        try:
            number = int(text.strip())
        except ValueError:
            raise ValueError(f"expected {allowed}") from None
        if number < low or (high is not None and number > high):
            raise ValueError(f"expected {allowed}")
        return number

    return parse


def _megabytes(text: str) -> float:
    allowed = "a number of megabytes from 0.1 to 100000, such as 10 or 0.5"
    try:
        number = float(text.strip())
    except ValueError:
        raise ValueError(f"expected {allowed}") from None
    if not 0.1 <= number <= 100_000:  # also NaN and infinity
        raise ValueError(f"expected {allowed}")
    return number


def _port_or_off(text: str) -> int:
    """A port from 0 to 65535, or `off` (no status page; Config.web_enabled says so)."""
    if text.strip().lower() == "off":
        return Config._field_defaults["web_port"]
    try:
        return _whole_number(0, 65535)(text)
    except ValueError:
        raise ValueError("expected a port (a whole number from 0 to 65535) or off") from None


def _host(text: str) -> str:
    host = text.strip()
    if not host:
        raise ValueError("expected an address such as 127.0.0.1")
    try:
        ipaddress.ip_address(host)
        return host
    except ValueError:
        pass
    try:
        socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        raise ValueError("expected an IP address, or a host name this machine can resolve, "
                         "such as 127.0.0.1") from None
    return host


def _zone_name(text: str) -> str:
    name = text.strip()
    if name:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("expected a time zone name such as Europe/Berlin or America/New_York") from None
    return name


def _log_level(text: str) -> str:
    level = text.strip().upper()
    if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return level


def _switch(text: str) -> bool:
    value = text.strip().lower()
    if value in {"1", "on", "yes", "true"}:
        return True
    if value in {"0", "off", "no", "false"}:
        return False
    raise ValueError("expected on or off")


def _isolation(text: str) -> str:
    value = text.strip().lower()
    if value not in {"thread", "process"}:
        raise ValueError("expected thread (modules run in AutoHome's threads) or process "
                         "(each run in a child process that can be stopped)")
    return value


def _text(text: str) -> str:
    return text.strip()


def _url(text: str) -> str:
    url = text.strip()
    if not url.startswith(("http://", "https://")):
        raise ValueError("expected an http:// or https:// address")
    return url


def _probe(text: str) -> tuple[str, int] | None:
    text = text.strip()
    if text.lower() == "off":
        return None
    host, _, port = text.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError('expected host:port such as "1.1.1.1:443", or off')
    return host.strip("[]"), int(port)


def _url_or_empty(text: str) -> str:
    return _url(text) if text.strip() else ""


# One entry per URL: `name=scheme://...` or `scheme://...`; a comma ends an entry only where
# the next one starts, so commas inside a URL's query stay.
# Entries part at a comma followed by a space or by the next URL; a comma inside a URL stays.
_ENTRY_START = r",(?:\s+|(?=(?:[A-Za-z][\w-]*=)?[A-Za-z][\w+.-]*://))"
_NAMED = r"([A-Za-z][\w-]*)=(.+)"


# Settings whose values hold passwords or tokens: an error names the key, not the value.
_SECRET_VALUES = {"AUTOHOME_NOTIFY_URLS", "PUSHOVER_TOKEN", "PUSHOVER_USER", "AUTOHOME_CONSOLE_PASSWORD"}


def _without_secrets(entry: str) -> str:
    """An entry of AUTOHOME_NOTIFY_URLS as an error may show it: its name and scheme only
    (Apprise URLs carry passwords and tokens in every part)."""
    head, sep, _ = entry.partition("://")
    return f"{head}://..." if sep else entry[:5] + "..."


def _notify_urls(text: str) -> tuple[tuple[str, str], ...]:
    """`ntfy=ntfy://host/topic, tgram://...` as (name, url) pairs. A URL without a name is
    named by its scheme (`tgram`), a second one of a scheme `tgram2`."""
    import re

    pairs: dict[str, str] = {}
    for number, entry in enumerate(re.split(_ENTRY_START, text.strip()), 1):
        entry = entry.strip().strip(",").strip()
        if not entry:
            continue
        named = re.fullmatch(_NAMED, entry)
        name, url = (named.group(1).lower(), named.group(2).strip()) if named else (
            entry.split("://", 1)[0].lower(), entry)
        if "://" not in url or not re.fullmatch(r"[A-Za-z][\w+.-]*", url.split("://", 1)[0]):
            raise ValueError(f"entry {number} ({_without_secrets(entry)}) is not a notification URL: use "
                             "Apprise's form, such as ntfy://host/topic, optionally named: ntfy=ntfy://host/topic")
        if named and name in pairs | {"pushover": ""}:  # a name given twice: `to=` could not tell them apart
            why = ("'pushover' is Pushover's own channel (PUSHOVER_TOKEN)" if name == "pushover"
                   else f"two channels named {name!r}")
            raise ValueError(f"{why}: give each its own name, such as {name}2={url.split('://', 1)[0]}://...")
        base, number = name, 2
        while name in pairs or name == "pushover":  # unnamed: mailto, mailto2, ...
            name, number = f"{base}{number}", number + 1
        pairs[name] = url
    return tuple(pairs.items())


def _day_windows(text: str) -> str:
    from autohome.durations import parse_between

    if text.strip():
        parse_between([part.strip() for part in text.split(",")])
    return text.strip()


def _seconds_or_default(text: str) -> float | None:
    if not text.strip():
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0  # said below
    if not 0 <= seconds <= 3600:
        raise ValueError("expected seconds from 0 to 3600, or nothing for Apprise's own pace")
    return seconds


# key -> (Config field, parser). The order is the order of config.example.env.
SETTINGS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "AUTOHOME_MODULES_DIR": ("modules_dir", _path),
    "AUTOHOME_LOG_DIR": ("log_dir", _path),
    "AUTOHOME_DATA_DIR": ("data_dir", _path),
    "AUTOHOME_LOG_LEVEL": ("log_level", _log_level),
    "AUTOHOME_LOG_MAX_MB": ("log_max_mb", _megabytes),
    "AUTOHOME_LOG_KEEP": ("log_keep", _whole_number(1, 10000)),
    "AUTOHOME_TICK_SECONDS": ("tick", _duration(_SECOND, _DAY)),
    "AUTOHOME_MAX_THREADS": ("max_threads", _whole_number(1, 1000)),
    "AUTOHOME_SHUTDOWN_GRACE_SECONDS": ("shutdown_grace", _duration(_SECOND, _DAY)),
    "AUTOHOME_MODULE_TIMEOUT": ("module_timeout", _duration(_SECOND)),
    "AUTOHOME_ISOLATION": ("isolation", _isolation),
    "AUTOHOME_STOP_GRACE_SECONDS": ("stop_grace", _duration(_SECOND, _DAY)),
    "AUTOHOME_IMPORT_TIMEOUT": ("import_timeout", _duration(timedelta(seconds=0.1), _DAY)),
    "AUTOHOME_TIMEZONE": ("timezone", _zone_name),
    "AUTOHOME_CONSOLE_HOST": ("console_host", _host),
    "AUTOHOME_CONSOLE_PORT": ("console_port", _whole_number(0, 65535)),
    "AUTOHOME_CONSOLE_PASSWORD": ("console_password", _text),
    "AUTOHOME_CONSOLE_MAX_LINE": ("console_max_line", _whole_number(80, 1_048_576)),
    "AUTOHOME_CONSOLE_MAX_CLIENTS": ("console_max_clients", _whole_number(1, 1000)),
    "AUTOHOME_CONSOLE_IDLE_SECONDS": ("console_idle", _duration(_SECOND, _DAY)),
    "AUTOHOME_CONSOLE_LOGIN_SECONDS": ("console_login", _duration(_SECOND, _DAY)),
    "AUTOHOME_WEB_HOST": ("web_host", _host),
    "AUTOHOME_WEB_PORT": ("web_port", _port_or_off),
    "PUSHOVER_TOKEN": ("pushover_token", _text),
    "PUSHOVER_USER": ("pushover_user", _text),
    "PUSHOVER_API_URL": ("pushover_api_url", _url),
    "AUTOHOME_NOTIFY_ON_FAILURE": ("notify_on_failure", _switch),
    "AUTOHOME_NETWORK_PROBE": ("network_probe", _probe),
    "AUTOHOME_WAKE_NETWORK_WAIT": ("wake_network_wait", _duration(_SECOND, _DAY)),
    "AUTOHOME_PING_URL": ("ping_url", _url_or_empty),
    "AUTOHOME_NOTIFY_URLS": ("notify_urls", _notify_urls),
    "AUTOHOME_QUIET_HOURS": ("quiet_hours", _day_windows),
    "AUTOHOME_NOTIFY_MAX_PER_HOUR": ("notify_max_per_hour", _whole_number(1, 100_000)),
    "AUTOHOME_NOTIFY_PACE": ("notify_pace", _seconds_or_default),
}


_MAY_BE_EMPTY = {"pushover_token", "pushover_user", "timezone", "console_password", "ping_url", "notify_urls",
                 "quiet_hours", "notify_pace"}


def read_env_file(path: Path | None, base: Path | None = None) -> tuple[dict[str, str], Path | None]:
    """The key/value pairs of the .env file, and which file that was.

    An explicit path must exist; the default `.env` in the working directory may be absent.
    A line that cannot be read is an error naming the file and the line: python-dotenv
    would skip it with a warning, and its setting would be silently lost.
    """
    if path is None:
        path = (base or Path()) / ".env"
        if not path.exists():
            return {}, None
    elif base is not None and not path.is_absolute():
        path = base / path
    if path.is_dir():
        raise ConfigError(f"env file {path} is a folder: settings go in a file of KEY=value lines")
    if not path.is_file():
        raise ConfigError(f"env file {path} does not exist: create it or drop --env-file")
    from dotenv import dotenv_values  # imported only when there is a .env to read
    from dotenv.parser import parse_stream

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"env file {path} cannot be read: {exc}") from exc
    for binding in parse_stream(io.StringIO(text)):
        if binding.error:
            line = binding.original.string.strip()
            raise ConfigError(f"env file {path}, line {binding.original.line}: cannot read "
                              f"{line[:80]!r}; write KEY=value, and close any quote you open")
    values = dotenv_values(stream=io.StringIO(text))
    return {k: v for k, v in values.items() if v is not None}, path


def load_config(
    environ: Mapping[str, str],
    env_file: Path | None = None,
    overrides: Mapping[str, str] | None = None,
    base: Path | None = None,
) -> Config:
    """Build the Config: .env first, then the process environment, then command-line overrides.

    Relative paths count from `base` (default: the working directory), and the folders
    come back absolute: a module that changes the working directory cannot move them.
    Raises ConfigError naming the key, the value and what is allowed.
    """
    file_values, used_file = read_env_file(env_file, base)
    merged: dict[str, str] = {**file_values, **environ, **(overrides or {})}
    fields: dict[str, Any] = {}
    for key, (name, parse) in SETTINGS.items():
        raw = merged.get(key)
        if raw is None or (raw.strip() == "" and name not in _MAY_BE_EMPTY):
            continue
        try:
            fields[name] = parse(raw)
        except ValueError as exc:
            where = f" (set in {used_file})" if key in file_values and key not in environ else ""
            shown = "" if key in _SECRET_VALUES else f"={raw!r}"  # no password or token shown
            raise ConfigError(f"{key}{shown} is not allowed{where}: {exc}") from None
    root = (base or Path()).resolve()
    for name in ("modules_dir", "log_dir", "data_dir"):
        fields[name] = root / (fields.get(name) or Config._field_defaults[name])
    given = bool(merged.get("AUTOHOME_CONSOLE_PORT", "").strip())
    if merged.get("AUTOHOME_WEB_PORT", "").strip().lower() == "off":
        fields["web_enabled"] = False
    return Config(**fields, console_port_given=given, env_file=used_file, settings=merged)


class LiveSettings(Mapping[str, str]):
    """The settings modules see (their `config`) and REQUIRES is checked against. Read again
    from .env by the console's `reload`: replaced as a whole, seen at once by every holder."""

    def __init__(self, values: Mapping[str, str]) -> None:
        self._values = dict(values)

    def __getitem__(self, key: str) -> str:
        return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def replace(self, values: Mapping[str, str]) -> list[str]:
        """Take the settings as read again; return the keys whose value changed, sorted."""
        old, self._values = self._values, dict(values)
        new = self._values
        return sorted(key for key in old.keys() | new.keys() if old.get(key) != new.get(key))


def is_loopback(host: str) -> bool:
    """Whether an address only this machine can reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything
