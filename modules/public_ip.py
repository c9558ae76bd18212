"""Tell me when this machine's public IP address changes.

Turn it on in .env:  AUTOHOME_PUBLIC_IP_URL=https://api.ipify.org
(any service that answers with the bare address as text)
"""

import ipaddress

import requests

INTERVAL = "15m"
NEEDS = ["network"]  # after a wake it waits for the Wi-Fi: no false "down"
REQUIRES = ["AUTOHOME_PUBLIC_IP_URL"]


def run(log, notify, store, config):
    service = config["AUTOHOME_PUBLIC_IP_URL"].strip()
    response = requests.get(service, timeout=10)
    response.raise_for_status()
    text = response.text.strip()
    try:
        address = str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{service} answered {text[:60]!r}, not an IP address; "
                         "check AUTOHOME_PUBLIC_IP_URL") from None
    previous = store.get("address")
    if previous is None:
        log.info("public IP is %s (first look, nothing to compare)", address)
    elif previous != address:
        log.info("public IP changed from %s to %s", previous, address)
        notify(f"Public IP changed from {previous} to {address}", title="New public IP")
    else:
        log.info("public IP still %s", address)
    store.set("address", address)
