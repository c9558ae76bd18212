"""The Pushover client and the modules' notify(), against a real HTTP server that answers like Pushover."""

from __future__ import annotations

import logging
import threading

import pytest
from conftest import Answer, FakePushover, free_port

from autohome.errors import NotifyError
from autohome.notify import Notifier, PushoverClient, build_message

TOKEN = "a" * 30
USER = "u" * 30
log = logging.getLogger("autohome.modules.test")


def notifier_for(server_url: str, timeout_s: float = 10.0) -> tuple[Notifier, PushoverClient]:
    client = PushoverClient(TOKEN, USER, server_url, timeout_s=timeout_s)
    return Notifier(client), client


def test_a_message_is_posted_with_token_user_and_fields(pushover: FakePushover,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    notifier, client = notifier_for(pushover.url)
    notify = notifier.for_module(log)
    with caplog.at_level(logging.INFO):
        assert notify("Disk almost full", title="laptop", priority=1, url="http://x", sound="siren")
    [request] = pushover.requests
    assert request.path == "/1/messages.json"
    assert request.form == {"token": TOKEN, "user": USER, "message": "Disk almost full",
                            "title": "laptop", "priority": "1", "url": "http://x", "sound": "siren"}
    assert "notification sent (request req-ok)" in caplog.text
    assert client.quota is not None and client.quota.remaining == 9876


def test_a_4xx_is_logged_with_the_api_errors_and_not_retried(pushover: FakePushover,
                                                             caplog: pytest.LogCaptureFixture) -> None:
    pushover.answers.append(pushover.refuse(400, "user identifier is invalid"))
    notifier, _ = notifier_for(pushover.url)
    assert notifier.for_module(log)("hello") is False
    assert len(pushover.requests) == 1
    assert "Pushover answered 400: user identifier is invalid" in caplog.text
    record = next(r for r in caplog.records if "answered 400" in r.getMessage())
    assert record.levelno == logging.ERROR and record.name == "autohome.modules.test"


def test_a_5xx_is_reported(pushover: FakePushover, caplog: pytest.LogCaptureFixture) -> None:
    pushover.answers.append(Answer(500, "<html>oops</html>"))
    notifier, _ = notifier_for(pushover.url)
    assert notifier.for_module(log)("hello") is False
    assert "Pushover answered 500: <html>oops</html>" in caplog.text


def test_a_429_records_the_quota_from_the_limit_headers(pushover: FakePushover) -> None:
    pushover.answers.append(Answer(429, {"status": 0, "errors": ["message limit reached"]},
                                   {"X-Limit-App-Remaining": "0", "X-Limit-App-Reset": "1767225600"}))
    _, client = notifier_for(pushover.url)
    message = build_message("hello")
    with pytest.raises(NotifyError) as failure:
        client.send(message)
    assert failure.value.status == 429 and not failure.value.is_final
    assert "message limit reached" in str(failure.value)
    assert client.quota is not None and client.quota.remaining == 0 and client.quota.reset_at == 1767225600


def test_a_status_0_with_200_is_a_refusal(pushover: FakePushover) -> None:
    pushover.answers.append(Answer(200, {"status": 0, "errors": ["message cannot be blank"]}))
    _, client = notifier_for(pushover.url)
    with pytest.raises(NotifyError, match="message cannot be blank"):
        client.send(build_message("x"))


def test_a_slow_api_times_out(pushover: FakePushover, caplog: pytest.LogCaptureFixture) -> None:
    held = threading.Event()
    pushover.answers.append(Answer(hold=held))
    notifier, _ = notifier_for(pushover.url, timeout_s=0.2)
    try:
        assert notifier.for_module(log)("hello") is False
    finally:
        held.set()
    assert "no answer from Pushover within 0.2s" in caplog.text


def test_no_network_is_reported_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    url = f"http://127.0.0.1:{free_port()}/1/messages.json"
    notifier, _ = notifier_for(url)
    assert notifier.for_module(log)("hello") is False
    assert f"cannot reach Pushover at {url}" in caplog.text


def test_without_keys_the_message_is_logged_not_sent(caplog: pytest.LogCaptureFixture) -> None:
    assert Notifier(None).for_module(log)("backup done") is False
    assert "set PUSHOVER_TOKEN and PUSHOVER_USER in .env" in caplog.text and "backup done" in caplog.text


def test_over_long_fields_are_cut_with_a_warning(pushover: FakePushover,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    notifier, _ = notifier_for(pushover.url)
    assert notifier.for_module(log)("x" * 2000, title="t" * 300, url_title="u" * 101)
    form = pushover.requests[0].form
    assert len(form["message"]) == 1024 and len(form["title"]) == 250 and len(form["url_title"]) == 100
    assert "message is 2000 characters, Pushover allows 1024: cut to fit" in caplog.text


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"message": "  "}, "message cannot be blank"),
        ({"message": "x", "priority": 5}, "priority 5 is not allowed"),
        ({"message": "x", "priority": 2, "retry": 10}, "retry 10 is too short"),
    ],
)
def test_invalid_messages_are_refused_before_sending(pushover: FakePushover, caplog, kwargs, reason) -> None:
    notifier, _ = notifier_for(pushover.url)
    assert notifier.for_module(log)(**kwargs) is False
    assert reason in caplog.text and not pushover.requests


def test_emergency_priority_gets_retry_and_expire(pushover: FakePushover) -> None:
    notifier, _ = notifier_for(pushover.url)
    assert notifier.for_module(log)("fire", priority=2)
    form = pushover.requests[0].form
    assert form["priority"] == "2" and form["retry"] == "60" and form["expire"] == "3600"
