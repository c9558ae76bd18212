"""The status page in a real browser: Debian's headless Chromium, driven by selenium."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.clock import WAIT_S
from support.console import ConsoleClient, console_port
from support.modules import settle

from autohome.app import Main
from autohome.logs.setup import LogSetup

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
if (CHROMIUM is None or CHROMEDRIVER is None) and not os.environ.get("CI"):
    pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them)",
                allow_module_level=True)

from selenium import webdriver  # noqa: E402 - only where a browser is there to drive
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

pytestmark = pytest.mark.xdist_group("browser")  # one Chromium per test run, on one worker


@pytest.fixture(scope="module")
def driver() -> Iterator[Any]:
    assert CHROMIUM is not None and CHROMEDRIVER is not None, "CI must install chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1400,1000", "--disable-gpu", "--no-first-run"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=webdriver.ChromeService(executable_path=CHROMEDRIVER), options=options)
    yield browser
    browser.quit()


@pytest.fixture
def main(web_main: Main) -> Main:
    return web_main


@pytest.fixture
def page(main: Main, driver: Any) -> Any:
    assert main.web is not None
    driver.get(f"http://127.0.0.1:{main.web.port}/")
    return driver


def waiting(driver: Any) -> Any:
    """A wait that looks often: the page changes within milliseconds of what causes it."""
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.02)


def marks(driver: Any, name: str, kind: str = "") -> list[str]:
    """The titles of a lane's marks, read in one go (the script may replace them any moment)."""
    selector = "svg.timeline rect.mark" + (f".{kind}" if kind else "")
    titles = driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(m => m.querySelector('title').textContent)",
        selector)
    return [title for title in titles if title.startswith(name + ":")]


def test_the_module_table_matches_the_console(page: Any, main: Main) -> None:
    table = ConsoleClient(console_port(main)).command("modules").strip().splitlines()[1:]
    console = {line.split()[0]: line.split()[1] for line in table}
    rows = page.find_elements(By.CSS_SELECTOR, "table.modules tbody tr")
    shown = {row.find_element(By.CSS_SELECTOR, "td a").text: row.get_attribute("data-state") for row in rows}
    assert shown == console == {"failing": "idle", "scripted": "idle", "weather": "idle"}


def test_a_run_started_with_the_button_appears_without_a_reload(page: Any, tmp_path: Path) -> None:
    page.execute_script("window.sameDocument = 'yes'")
    assert marks(page, "weather") == []
    page.find_element(By.CSS_SELECTOR, 'button[aria-label="run weather now"]').click()
    waiting(page).until(lambda driver: marks(driver, "weather"))
    waiting(page).until(lambda driver: "weather" in driver.find_element(By.ID, "flash").text)
    assert page.execute_script("return window.sameDocument") == "yes"  # the page was never reloaded
    page.save_screenshot(str(tmp_path / "main-page.png"))
    assert (tmp_path / "main-page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_paused_module_shows_paused(page: Any, main: Main) -> None:
    page.find_element(By.CSS_SELECTOR, 'button[aria-label="pause weather"]').click()
    waiting(page).until(lambda driver: driver.execute_script(
        "const row = document.getElementById('module-weather');"
        "return row.dataset.state === 'paused' && row.querySelector('.badge').textContent === 'paused';"))
    assert "state:     paused" in ConsoleClient(console_port(main)).command("modules read weather")


def test_a_failing_run_shows_its_error_on_hover_and_focus(page: Any, main: Main, logs: LogSetup) -> None:
    ConsoleClient(console_port(main)).command("modules run failing")
    settle(main, logs)
    page.refresh()
    [title] = waiting(page).until(lambda driver: marks(driver, "failing", "error"))
    assert "RuntimeError: no network" in title
    # Focusing the mark (Tab, or a click) shows the same text beside it.
    hidden, tip = page.execute_script(
        "const mark = [...document.querySelectorAll('svg.timeline rect.mark.error')]"
        "  .find(m => m.querySelector('title').textContent.startsWith('failing:'));"
        "mark.focus(); const tip = document.getElementById('tip'); return [tip.hidden, tip.textContent];")
    assert not hidden and "RuntimeError: no network" in tip


def test_a_module_that_logs_a_script_shows_the_text_and_runs_nothing(page: Any, main: Main, logs: LogSetup,
                                                                     tmp_path: Path) -> None:
    ConsoleClient(console_port(main)).command("modules run scripted")
    settle(main, logs)
    page.get(page.current_url.rstrip("/") + "/modules/scripted")
    logged = page.find_element(By.CSS_SELECTOR, "pre.log").text
    assert "<script>alert(1)</script>" in logged
    with pytest.raises(NoAlertPresentException):
        page.switch_to.alert.text  # noqa: B018 - reading it is what raises when there is none
    assert page.find_elements(By.CSS_SELECTOR, "main script") == []
    page.save_screenshot(str(tmp_path / "module-page.png"))
    assert (tmp_path / "module-page.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("width", [1400, 400])
def test_the_page_fits_the_screen_and_its_log_shows_the_newest_line(page: Any, main: Main, logs: LogSetup,
                                                                   width: int) -> None:
    from autohome.logs.tree import get_logger

    for number in range(60):
        get_logger("autohome.test").info("line %d of many", number)
    logs.flush()
    page.set_window_size(width, 900)
    try:
        page.refresh()
        waiting(page).until(lambda driver: "line 59 of many" in driver.find_element(By.ID, "log").text)
        overflow, tallest, newest_shown = page.execute_script(
            "const rows = [...document.querySelectorAll('table.modules tbody tr')];"
            "const box = document.querySelector('#log .logbox').getBoundingClientRect();"
            "const pre = document.querySelector('#log pre.log').getBoundingClientRect();"
            "return [document.documentElement.scrollWidth - window.innerWidth,"
            "        Math.max(...rows.map(row => row.getBoundingClientRect().height)),"
            "        Math.abs(pre.bottom - box.bottom) < 2];")
        assert overflow <= 0, f"the page is {overflow}px wider than a {width}px screen"
        assert tallest < 90, f"a module row is {tallest}px tall at {width}px"
        assert newest_shown  # the log box starts at its newest line, not its oldest
    finally:
        page.set_window_size(1400, 1000)
