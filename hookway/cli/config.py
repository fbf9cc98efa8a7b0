"""Where the command line finds its server, key and secrets: a flag, else the
environment (``HOOKWAY_URL``, ``HOOKWAY_API_KEY``, ``HOOKWAY_SEND_SECRET``), else a
profile of the config file (``~/.config/hookway/config.toml``, or ``HOOKWAY_CLI_CONFIG``)::

    default_profile = "local"

    [profiles.local]
    url = "http://127.0.0.1:8000"
    api_key = "hwk_…"

    [profiles.prod]
    url = "https://hooks.example.com"
    api_key = "env:PROD_HOOKWAY_KEY"     # read from the environment
    [profiles.prod.secrets]              # what `hookway send SOURCE` signs with
    gitlab = "env:PROD_GITLAB_TOKEN"

``--profile`` (or ``HOOKWAY_PROFILE``) picks a profile, else ``default_profile``, else
the one named ``default`` if there is one."""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hookway.cli.errors import UsageProblem
from hookway.secrets import resolve_secret

URL_ENV = "HOOKWAY_URL"
KEY_ENV = "HOOKWAY_API_KEY"
PROFILE_ENV = "HOOKWAY_PROFILE"
FILE_ENV = "HOOKWAY_CLI_CONFIG"  # not HOOKWAY_CONFIG: that is the server's hookway.toml
SECRET_ENV = "HOOKWAY_SEND_SECRET"
PROFILE_KEYS = {"url", "api_key", "secrets"}


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(FILE_ENV):
        return Path(env[FILE_ENV]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "hookway" / "config.toml"


@dataclass(frozen=True)
class Settings:
    """What one command runs with; ``url`` and ``api_key`` may be missing until a
    command needs them (``require_url``, ``require_key``)."""

    url: str | None = None
    api_key: str | None = None
    profile: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)

    def require_url(self) -> str:
        if not self.url:
            raise UsageProblem(
                "no Hookway server given",
                hint=f"pass --server URL, set {URL_ENV}, or add a profile to {config_path()}",
            )
        return self.url

    def require_key(self) -> str:
        if not self.api_key:
            raise UsageProblem(
                "no API key given",
                hint=f"pass --key KEY, set {KEY_ENV}, or add a profile to {config_path()} "
                "(the server's `./manage.py create_api_key NAME` makes one)",
            )
        return self.api_key

    def send_secret(self, source: str, env: Mapping[str, str] | None = None) -> str | None:
        """The secret ``hookway send`` signs with when no ``--secret`` is given."""
        env = os.environ if env is None else env
        if env.get(SECRET_ENV):
            return env[SECRET_ENV]
        ref = self.secrets.get(source)
        return None if ref is None else self._resolve(ref, f"secrets.{source}", env)

    def _resolve(self, ref: str, what: str, env: Mapping[str, str]) -> str:
        value = resolve_secret(ref, env)
        if value is None:
            raise UsageProblem(
                f"profile {self.profile!r}: {what} is {ref}, and that variable is not set"
            )
        return value


def _check_url(url: str, where: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageProblem(
            f"{where}: {url!r} is not an http(s) URL", hint="e.g. http://127.0.0.1:8000"
        )
    return url.rstrip("/")


def _read_file(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        return {}
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageProblem(f"can't read {path}: {exc}") from None


def _profile(
    data: dict[str, Any], name: str | None, path: Path
) -> tuple[str | None, dict[str, Any]]:
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise UsageProblem(f"{path}: [profiles] must be a table of profiles")
    explicit = name is not None
    if name is None:
        default = data.get("default_profile")
        name = (
            default if isinstance(default, str) else ("default" if "default" in profiles else None)
        )
        explicit = isinstance(default, str)
    if name is None:
        return None, {}
    profile = profiles.get(name)
    if profile is None:
        if explicit:
            known = ", ".join(sorted(profiles)) or "none"
            raise UsageProblem(f"no profile {name!r} in {path} (profiles: {known})")
        return None, {}
    if not isinstance(profile, dict):
        raise UsageProblem(f"{path}: profiles.{name} must be a table")
    unknown = set(profile) - PROFILE_KEYS
    if unknown:
        raise UsageProblem(
            f"{path}: profiles.{name} has unknown keys {sorted(unknown)} "
            f"(known: {sorted(PROFILE_KEYS)})"
        )
    return name, profile


def load(
    server: str | None = None,
    key: str | None = None,
    profile: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Settings:
    """The settings from flags (given here), the environment and the config file, in
    that order; UsageProblem, naming the file and key, when something is malformed."""
    env = os.environ if env is None else env
    path = config_path(env)
    name, table = _profile(_read_file(path), profile or env.get(PROFILE_ENV) or None, path)
    where = f"profile {name!r} in {path}"
    url = server or env.get(URL_ENV) or None
    url_where = "--server" if server else URL_ENV
    if url is None and table.get("url") is not None:
        if not isinstance(table["url"], str):
            raise UsageProblem(f"{where}: url must be a string")
        url, url_where = table["url"], where
    api_key = key or env.get(KEY_ENV) or None
    secrets = table.get("secrets", {})
    if not isinstance(secrets, dict) or not all(isinstance(v, str) for v in secrets.values()):
        raise UsageProblem(f"{where}: secrets must map source slugs to strings")
    settings = Settings(
        url=None if url is None else _check_url(url, url_where),
        profile=name,
        secrets=dict(secrets),
    )
    if api_key is None and table.get("api_key") is not None:
        if not isinstance(table["api_key"], str):
            raise UsageProblem(f"{where}: api_key must be a string")
        api_key = settings._resolve(table["api_key"], "api_key", env)
    return Settings(settings.url, api_key, name, settings.secrets)
