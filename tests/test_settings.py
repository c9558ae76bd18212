"""Settings: defaults, the .env file, the environment and flags, and clear errors."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from autohome.config import PUSHOVER_MESSAGES_URL, SETTINGS, Config, load_config
from autohome.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_need_no_env_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config({})
    assert config == in_folder(Config(), tmp_path)
    assert config.tick == timedelta(seconds=30) and config.max_threads == 8
    assert (config.console_host, config.console_port) == ("127.0.0.1", 23)
    assert config.pushover_api_url == PUSHOVER_MESSAGES_URL and not config.has_pushover


def test_environment_beats_env_file_and_overrides_beat_both(tmp_path: Path) -> None:
    env_file = tmp_path / "my.env"
    env_file.write_text("AUTOHOME_MAX_THREADS=3\nAUTOHOME_TICK_SECONDS=10\nAUTOHOME_CONSOLE_PORT=2000\n")
    config = load_config({"AUTOHOME_TICK_SECONDS": "1m", "AUTOHOME_CONSOLE_PORT": "2001"}, env_file,
                         {"AUTOHOME_CONSOLE_PORT": "0"})
    assert config.max_threads == 3 and config.tick == timedelta(minutes=1) and config.console_port == 0
    assert config.env_file == env_file


def test_default_env_file_is_read_from_the_working_directory(tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("PUSHOVER_TOKEN=abc\nPUSHOVER_USER=def\n")
    config = load_config({})
    assert config.has_pushover and config.env_file == Path(".env")


def test_every_key_is_documented_in_the_example_with_its_default() -> None:
    example = (ROOT / "config.example.env").read_text()
    settings_page = (ROOT / "docs" / "settings.md").read_text()
    for key in SETTINGS:
        assert f"{key}=" in example, key
        assert f"`{key}`" in settings_page, key
    # The example's values are the defaults: loading it changes nothing.
    documented = load_config({}, ROOT / "config.example.env", base=ROOT)
    assert documented == in_folder(Config(env_file=ROOT / "config.example.env", settings=documented.settings),
                                   ROOT)


def in_folder(config: Config, folder: Path) -> Config:
    """The config with its folders made absolute, as load_config returns them."""
    return config._replace(modules_dir=folder.resolve() / config.modules_dir,
                   log_dir=folder.resolve() / config.log_dir, data_dir=folder.resolve() / config.data_dir)


def test_folders_are_absolute_so_a_change_of_directory_cannot_move_them(tmp_path: Path) -> None:
    config = load_config({"AUTOHOME_LOG_DIR": "var/logs"}, base=tmp_path)
    assert config.log_dir == tmp_path.resolve() / "var" / "logs" and config.modules_dir.is_absolute()


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("AUTOHOME_MAX_THREADS", "abc", "AUTOHOME_MAX_THREADS='abc' is not allowed: expected a whole number"),
        ("AUTOHOME_MAX_THREADS", "0", "from 1 to 1000"),
        ("AUTOHOME_TICK_SECONDS", "-30", "AUTOHOME_TICK_SECONDS='-30' is not allowed"),
        ("AUTOHOME_TICK_SECONDS", "0", "expected seconds as a number"),
        ("AUTOHOME_CONSOLE_HOST", "not a host!", "AUTOHOME_CONSOLE_HOST"),
        ("AUTOHOME_LOG_LEVEL", "LOUD", "expected DEBUG, INFO, WARNING or ERROR"),
        ("AUTOHOME_TICK_SECONDS", "1e-7", "expected a duration from 1s to 1d"),
        ("AUTOHOME_TICK_SECONDS", "0.5", "expected a duration from 1s to 1d"),
        ("AUTOHOME_TICK_SECONDS", "99999999999999999999", "AUTOHOME_TICK_SECONDS='99999999999999999999'"),
        ("AUTOHOME_MODULE_TIMEOUT", "99999999999999999999", "from 1s to 3650d"),
        ("AUTOHOME_SHUTDOWN_GRACE_SECONDS", "0.001", "from 1s to 1d"),
        ("AUTOHOME_CONSOLE_IDLE_SECONDS", "nan", "AUTOHOME_CONSOLE_IDLE_SECONDS='nan'"),
        ("AUTOHOME_LOG_MAX_MB", "0.01", "megabytes from 0.1 to 100000"),
        ("AUTOHOME_LOG_MAX_MB", "1e400", "megabytes from 0.1 to 100000"),
        ("AUTOHOME_CONSOLE_HOST", "no-such-host.invalid", "a host name this machine can resolve"),
        ("AUTOHOME_ISOLATION", "fork", "expected thread"),
        ("AUTOHOME_NOTIFY_PACE", "fast", "NOTIFY_PACE='fast' is not allowed: expected seconds from 0"),
        ("AUTOHOME_NOTIFY_PACE", "nan", "expected seconds from 0 to 3600"),
        ("AUTOHOME_NOTIFY_URLS", "home=ntfy://a/b, home=tgram://1:x/2",
         "two channels named 'home': give each its own name"),
        ("AUTOHOME_NOTIFY_URLS", "pushover=ntfy://a/b", "'pushover' is Pushover's own channel"),
        ("AUTOHOME_NOTIFY_URLS", "my phone=ntfy://a/b", "is not a notification URL"),
        ("AUTOHOME_NOTIFY_URLS", "ntfy://a/b, tgram:123", "entry 2 .tgram.... is not a notification URL"),
    ],
)
def test_bad_values_name_key_value_and_what_is_allowed(key: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config({key: value}, overrides={})


def test_tick_accepts_durations() -> None:
    assert load_config({"AUTOHOME_TICK_SECONDS": "2m"}).tick == timedelta(minutes=2)
    assert load_config({"AUTOHOME_TICK_SECONDS": "1.5"}).tick == timedelta(seconds=1.5)


def test_a_line_of_the_env_file_that_cannot_be_read_names_the_file_and_line(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text('AUTOHOME_MAX_THREADS=3\nAUTOHOME_TICK_SECONDS="5\nAUTOHOME_LOG_LEVEL=INFO\n')
    with pytest.raises(ConfigError, match=r"\.env, line 2: cannot read 'AUTOHOME_TICK_SECONDS=\"5'"):
        load_config({}, base=tmp_path)


def test_an_env_file_that_is_a_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_config({}, base=tmp_path)


def test_the_status_page_port_may_be_off_and_a_flag_turns_it_on_again(tmp_path: Path) -> None:
    assert load_config({}, base=tmp_path).web_enabled
    off = load_config({"AUTOHOME_WEB_PORT": "off"}, base=tmp_path)
    assert not off.web_enabled
    on = load_config({"AUTOHOME_WEB_PORT": "off"}, overrides={"AUTOHOME_WEB_PORT": "9000"}, base=tmp_path)
    assert on.web_enabled and on.web_port == 9000
    with pytest.raises(ConfigError, match=r"AUTOHOME_WEB_PORT='of' is not allowed.*or off"):
        load_config({"AUTOHOME_WEB_PORT": "of"}, base=tmp_path)


def test_the_example_says_what_happens_to_notifications_without_keys() -> None:
    example = (ROOT / "config.example.env").read_text()
    assert "logged instead of sent" not in example  # they are kept, and sent later (tests/notifications)
    assert "notifications are kept" in example and "sent once both are set" in example


def test_channels_are_named_by_their_name_or_their_scheme() -> None:
    config = load_config({"AUTOHOME_NOTIFY_URLS": "ntfy=ntfy://a/b, mailto://me:pw@example.org, "
                                                  "mailto://you:pw@example.org,Chat=tgram://1:x/2,"
                                                  "json://host/path?a=1,2"})
    assert [name for name, _ in config.notify_urls] == ["ntfy", "mailto", "mailto2", "chat", "json"]
    assert config.notify_urls[-1][1] == "json://host/path?a=1,2"  # a comma inside a URL stays
    assert "pw@" not in repr(config)  # the URLs hold passwords and tokens


def test_an_error_in_the_channel_urls_shows_no_password_or_token() -> None:
    with pytest.raises(ConfigError) as error:
        load_config({"AUTOHOME_NOTIFY_URLS": "tgram:/123:secret/4"})
    assert "entry 1 (tgram...) is not a notification URL" in str(error.value)
    assert "secret" not in str(error.value)
    with pytest.raises(ConfigError) as error:
        load_config({"AUTOHOME_NOTIFY_URLS": "ntfy=ntfy://me:hunter2@a/b,ntfy=ntfy://me:hunter2@c/d"})
    assert "two channels named 'ntfy'" in str(error.value) and "hunter2" not in str(error.value)
