"""Take the README's picture of the status page: the bundled modules, a few hours of test
mode's virtual time (with a laptop sleep in it), headless Chromium.

Run: .venv/bin/python docs/screenshot.py   (needs Debian's chromium and chromium-driver)
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from autohome import cli  # noqa: E402

TYPED = "90m\nsleep 1h\n75m\n"  # an hour and a half, an hour asleep, an hour and a quarter


class _Lines:
    """The daemon's stderr, searched for the status page's address."""

    def __init__(self) -> None:
        self.text = ""
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            self.text += text
            self.changed.notify_all()
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def main() -> None:
    from selenium import webdriver

    folder = Path(tempfile.mkdtemp(prefix="autohome-shot-"))
    env = {"AUTOHOME_DISK_PATHS": "/", "AUTOHOME_WATCH_URLS": "http://127.0.0.1:9/",
           "AUTOHOME_TIMEZONE": "Europe/Berlin", "PATH": os.environ.get("PATH", "")}
    read_end, write_end = os.pipe()
    stdin, typist = os.fdopen(read_end, "r"), os.fdopen(write_end, "w")
    err = _Lines()
    args = ["-t", "--port", "0", "--web-port", "0", "--modules", str(ROOT / "modules"),
            "--start", "2026-11-28T06:00"]
    daemon = threading.Thread(target=cli.main, args=(args, env, stdin, err), kwargs={"workdir": folder})
    daemon.start()
    typist.write(TYPED)
    typist.flush()
    with err.changed:  # heartbeat runs each minute: about 167 times in the time typed
        err.changed.wait_for(lambda: err.text.count("module heartbeat finished") >= 166, 300)
    url = re.search(r"status page at (\S+)", err.text).group(1)
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "chromium"
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--window-size=1280,1000", "--hide-scrollbars"):
        options.add_argument(argument)
    service = webdriver.ChromeService(shutil.which("chromedriver"))
    browser = webdriver.Chrome(service=service, options=options)
    try:
        browser.get(url)
        browser.save_screenshot(str(ROOT / "docs" / "status-page.png"))
    finally:
        browser.quit()
        typist.close()
        daemon.join(60)
    logging.getLogger("autohome").info("screenshot written to docs/status-page.png")


if __name__ == "__main__":
    main()
