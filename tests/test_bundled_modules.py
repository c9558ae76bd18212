"""The bundled modules: each notifies on changes only, and is off until configured."""

from __future__ import annotations

from collections import namedtuple
from pathlib import Path

import pytest
from support.processes import clean_env, free_port, run_autohome
from support.pushover import Answer, FakePushover

from autohome.catalog.loader import load_module
from autohome.logs.tree import get_logger
from autohome.storage.db import Database
from autohome.storage.store import ModuleStore

ROOT = Path(__file__).resolve().parent.parent
SBattery = namedtuple("SBattery", "percent secsleft power_plugged")  # as psutil.sensors_battery answers
MODULES = ROOT / "modules"


class Module:
    """A bundled module with a real store and a notify that records what it was asked."""

    def __init__(self, name: str, **config: str) -> None:
        self.spec = load_module(MODULES / f"{name}.py")
        self.config = config
        self.store = ModuleStore(Database.in_memory(), name)
        self.sent: list[str] = []
        self.log = get_logger(f"autohome.modules.{name}")

    def notify(self, message: str, **fields: object) -> bool:
        self.sent.append(message)
        return True

    def run(self) -> list[str]:
        """Run once; return the messages this run sent."""
        before = len(self.sent)
        given = {"log": self.log, "notify": self.notify, "store": self.store, "config": self.config}
        self.spec.run(*(given[name] for name in self.spec.wants))
        return self.sent[before:]


def test_disk_space_warns_once_when_low_and_once_when_recovered(tmp_path: Path) -> None:
    disk = Module("disk_space", AUTOHOME_DISK_PATHS=f"{tmp_path}", AUTOHOME_DISK_MIN_FREE_PERCENT="100")
    [warning] = disk.run()
    assert warning.startswith(f"{tmp_path} has only") and "% free" in warning
    assert disk.run() == []  # still low: no second message
    disk.config["AUTOHOME_DISK_MIN_FREE_PERCENT"] = "0"
    [recovered] = disk.run()
    assert recovered.startswith(f"{tmp_path} has ") and recovered.endswith("% free again")
    assert disk.run() == []
    disk.config["AUTOHOME_DISK_MIN_FREE_PERCENT"] = "lots"
    with pytest.raises(ValueError, match="AUTOHOME_DISK_MIN_FREE_PERCENT='lots'"):
        disk.run()


def test_website_watch_notifies_when_down_and_when_back(pushover: FakePushover) -> None:
    site = pushover.url.replace("/1/messages.json", "/status")
    watch = Module("website_watch", AUTOHOME_WATCH_URLS=site, AUTOHOME_WATCH_TIMEOUT_SECONDS="2")
    assert watch.run() == []  # up: nothing to say
    pushover.answers.append(Answer(503, "maintenance"))
    assert watch.run() == [f"{site} is down: HTTP 503 Service Unavailable"]
    pushover.answers.append(Answer(500, "still broken"))
    assert watch.run() == []  # still down: no repeat
    assert watch.run() == [f"{site} answers again"]


def test_website_watch_reports_a_site_that_does_not_answer() -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    watch = Module("website_watch", AUTOHOME_WATCH_URLS=dead)
    assert watch.run() == [f"{dead} is down: cannot connect (ConnectionError)"]


def test_public_ip_notifies_on_change_only(pushover: FakePushover) -> None:
    service = pushover.url.replace("/1/messages.json", "/ip")
    ip = Module("public_ip", AUTOHOME_PUBLIC_IP_URL=service)
    pushover.answers += [Answer(200, "203.0.113.7\n"), Answer(200, "203.0.113.7"),
                         Answer(200, "198.51.100.20"), Answer(200, "<html>oops</html>")]
    assert ip.run() == []  # first look: nothing to compare with
    assert ip.run() == []
    assert ip.run() == ["Public IP changed from 203.0.113.7 to 198.51.100.20"]
    with pytest.raises(ValueError, match="not an IP address; check AUTOHOME_PUBLIC_IP_URL"):
        ip.run()
    assert ip.store.get("address") == "198.51.100.20"


def test_battery_warns_once_while_low_and_discharging(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    def set_battery(percent: int, plugged: bool) -> None:  # what psutil reads from the machine
        reading = SBattery(percent, 3600, plugged)
        monkeypatch.setattr(psutil, "sensors_battery", lambda: reading)

    battery = Module("battery", AUTOHOME_BATTERY_MIN_PERCENT="15")
    set_battery(40, False)
    assert battery.run() == []
    set_battery(12, False)
    assert battery.run() == ["Battery at 12% and not charging"]
    set_battery(10, False)
    assert battery.run() == []
    set_battery(10, True)
    assert battery.run() == []
    set_battery(9, False)
    assert battery.run() == ["Battery at 9% and not charging"]


def test_no_battery_is_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import psutil

    monkeypatch.setattr(psutil, "sensors_battery", lambda: None)  # a desktop
    battery = Module("battery", AUTOHOME_BATTERY_MIN_PERCENT="15")
    assert battery.run() == []


def test_the_modules_that_talk_to_the_network_need_it() -> None:
    for name in ("website_watch", "public_ip"):
        assert load_module(MODULES / f"{name}.py").needs == ("network",), name


def test_bundled_modules_are_off_until_configured_and_notify_once_on(tmp_path: Path,
                                                                       pushover: FakePushover) -> None:
    # The real program with the bundled modules folder and a .env that turns one module on.
    site = f"http://127.0.0.1:{free_port()}/"
    (tmp_path / ".env").write_text(f"AUTOHOME_WATCH_URLS={site}\nPUSHOVER_TOKEN={'a' * 30}\n"
                                   f"PUSHOVER_USER={'u' * 30}\nPUSHOVER_API_URL={pushover.url}\n")
    result = run_autohome(tmp_path, "-t", "--notify", "--port", "0", "--modules", str(MODULES), stdin="\n\n",
                          env=clean_env(AUTOHOME_NETWORK_PROBE="off"))  # online: no network here
    assert result.returncode == 0, result.stderr
    pushover.wait_for_requests(1)
    [message] = [r.form["message"] for r in pushover.requests]
    assert message == f"{site} is down: cannot connect (ConnectionError)"
    log = (tmp_path / "logs" / "test.log").read_text()
    assert "module website_watch finished" in log
    for off in ("disk_space", "public_ip", "battery"):
        assert f"module {off} finished" not in log and f"module {off} failed" not in log
