"""hookway.cli.config: a flag, else the environment, else the profile; and a clear usage
error (exit code 2) naming the file and key for anything malformed."""

from __future__ import annotations

from pathlib import Path

import pytest

from hookway.cli import config
from hookway.cli.errors import USAGE, UsageProblem


def write(tmp_path: Path, text: str) -> dict[str, str]:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return {"HOOKWAY_CLI_CONFIG": str(path)}


PROFILES = """
default_profile = "local"
[profiles.local]
url = "http://127.0.0.1:8000/"
api_key = "hwk_local"
[profiles.local.secrets]
gitlab = "gl-literal"
stripe = "env:STRIPE_SECRET"
[profiles.prod]
url = "https://hooks.example.com"
api_key = "env:PROD_KEY"
"""


def test_flags_win_over_the_environment_which_wins_over_the_profile(tmp_path: Path) -> None:
    env = write(tmp_path, PROFILES)

    from_file = config.load(env=env)
    assert (from_file.url, from_file.api_key, from_file.profile) == (
        "http://127.0.0.1:8000",
        "hwk_local",
        "local",
    )
    env_over = config.load(env={**env, "HOOKWAY_URL": "http://e:1", "HOOKWAY_API_KEY": "k-env"})
    assert (env_over.url, env_over.api_key) == ("http://e:1", "k-env")
    flags_over = config.load(
        "http://f:2", "k-flag", env={**env, "HOOKWAY_URL": "http://e:1", "HOOKWAY_API_KEY": "x"}
    )
    assert (flags_over.url, flags_over.api_key) == ("http://f:2", "k-flag")


def test_a_profile_is_picked_by_flag_or_environment_and_reads_env_references(
    tmp_path: Path,
) -> None:
    env = {**write(tmp_path, PROFILES), "PROD_KEY": "hwk_prod"}

    assert config.load(profile="prod", env=env).api_key == "hwk_prod"
    assert config.load(env={**env, "HOOKWAY_PROFILE": "prod"}).url == "https://hooks.example.com"
    with pytest.raises(UsageProblem, match="PROD_KEY"):
        config.load(profile="prod", env={k: v for k, v in env.items() if k != "PROD_KEY"})


def test_send_secrets_come_from_the_environment_then_the_profile(tmp_path: Path) -> None:
    env = {**write(tmp_path, PROFILES), "STRIPE_SECRET": "whsec_x"}
    settings = config.load(env=env)

    assert settings.send_secret("gitlab", env) == "gl-literal"
    assert settings.send_secret("stripe", env) == "whsec_x"
    assert settings.send_secret("other", env) is None
    assert settings.send_secret("gitlab", {**env, "HOOKWAY_SEND_SECRET": "s"}) == "s"


def test_without_a_file_nothing_is_set_and_a_command_says_how_to_set_it(tmp_path: Path) -> None:
    settings = config.load(env={"HOOKWAY_CLI_CONFIG": str(tmp_path / "none.toml")})

    assert (settings.url, settings.api_key, settings.profile) == (None, None, None)
    with pytest.raises(UsageProblem) as caught:
        settings.require_url()
    assert "--server" in caught.value.hint
    assert "HOOKWAY_URL" in caught.value.hint
    assert caught.value.exit_code == USAGE
    with pytest.raises(UsageProblem, match="no API key"):
        settings.require_key()


def test_the_file_defaults_to_the_xdg_config_home(tmp_path: Path) -> None:
    assert config.config_path({"XDG_CONFIG_HOME": str(tmp_path)}) == (
        tmp_path / "hookway" / "config.toml"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("profiles = 3", "must be a table"),
        ("[profiles.x]\nurl = 'ftp://x'", "not an http"),
        ("[profiles.x]\nurl = 7", "url must be a string"),
        ("[profiles.x]\nkey = 'hwk'", "unknown keys"),
        ("[profiles.x]\nsecrets = {a = 1}", "secrets must map"),
        ("[profiles.x\n", "can't read"),
        ("default_profile = 'y'\n[profiles.x]", "no profile 'y'"),
    ],
)
def test_a_malformed_file_is_a_usage_error_naming_what(
    tmp_path: Path, text: str, message: str
) -> None:
    env = write(tmp_path, text)
    with pytest.raises(UsageProblem, match=message):
        config.load(profile=None if "default_profile" in text else "x", env=env)


def test_an_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(UsageProblem, match=r"profiles: local, prod"):
        config.load(profile="staging", env=write(tmp_path, PROFILES))


def test_a_bad_server_url_is_named_with_where_it_came_from(tmp_path: Path) -> None:
    env = {"HOOKWAY_CLI_CONFIG": str(tmp_path / "none.toml")}
    with pytest.raises(UsageProblem, match="--server"):
        config.load("localhost:8000", env=env)
    with pytest.raises(UsageProblem, match="HOOKWAY_URL"):
        config.load(env={**env, "HOOKWAY_URL": "nope"})
