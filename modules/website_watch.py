"""Tell me when a website stops answering or answers with an error, and when it is back.

Turn it on in .env:  AUTOHOME_WATCH_URLS=https://example.org,https://my.blog   (comma-separated)
Optional:            AUTOHOME_WATCH_TIMEOUT_SECONDS=10
"""

import requests

INTERVAL = "5m"
NEEDS = ["network"]  # after a wake it waits for the Wi-Fi: no false "down"
REQUIRES = ["AUTOHOME_WATCH_URLS"]


def run(log, notify, store, config):
    timeout_s = float(config.get("AUTOHOME_WATCH_TIMEOUT_SECONDS", "10"))
    for url in (u.strip() for u in config["AUTOHOME_WATCH_URLS"].split(",") if u.strip()):
        problem = _check(url, timeout_s)
        was_down = store.get(f"down:{url}", False)
        if problem:
            log.warning("%s is down: %s", url, problem)
            if not was_down:
                notify(f"{url} is down: {problem}", title="Website down", url=url)
        else:
            log.info("%s is up", url)
            if was_down:
                notify(f"{url} answers again", title="Website back", url=url)
        store.set(f"down:{url}", bool(problem))


def _check(url, timeout_s):
    """None when the site answers below 400, else what went wrong."""
    try:
        response = requests.get(url, timeout=timeout_s, allow_redirects=True)
    except requests.Timeout:
        return f"no answer within {timeout_s:g}s"
    except requests.RequestException as exc:
        return f"cannot connect ({type(exc).__name__})"
    if response.status_code >= 400:
        return f"HTTP {response.status_code} {response.reason}"
    return None
