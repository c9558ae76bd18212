"""The Pushover client against a real HTTP server on 127.0.0.1 that answers like Pushover."""

from __future__ import annotations

import threading

import pytest
from support.processes import free_port
from support.pushover import Answer, FakePushover

from autohome.errors import NotifyError
from autohome.notifications.pushover import Message, PushoverClient, build_message

TOKEN = "a" * 30
USER = "u" * 30


def client_for(url: str, timeout_s: float = 10.0) -> PushoverClient:
    return PushoverClient(TOKEN, USER, url, timeout_s=timeout_s)


def test_a_message_is_posted_with_token_user_and_fields(pushover: FakePushover) -> None:
    client = client_for(pushover.url)
    message = build_message("Disk almost full", title="laptop", priority=1, url="http://x", sound="siren")
    assert client.send(message).request == "req-ok"
    [request] = pushover.requests
    assert request.path == "/1/messages.json"
    assert request.form == {"token": TOKEN, "user": USER, "message": "Disk almost full",
                            "title": "laptop", "priority": "1", "url": "http://x", "sound": "siren"}
    assert client.quota is not None and client.quota.remaining == 9876


def test_a_4xx_carries_the_api_errors_and_is_final(pushover: FakePushover) -> None:
    pushover.answers.append(pushover.refuse(400, "user identifier is invalid"))
    with pytest.raises(NotifyError) as failure:
        client_for(pushover.url).send(build_message("hello"))
    assert failure.value.status == 400 and failure.value.is_final
    assert str(failure.value) == "Pushover answered 400: user identifier is invalid"
    assert '"status": 0' in failure.value.body


def test_a_5xx_is_not_final(pushover: FakePushover) -> None:
    pushover.answers.append(Answer(500, "<html>oops</html>"))
    with pytest.raises(NotifyError, match="Pushover answered 500: <html>oops</html>") as failure:
        client_for(pushover.url).send(build_message("hello"))
    assert not failure.value.is_final


def test_a_429_records_the_quota_from_the_limit_headers(pushover: FakePushover) -> None:
    pushover.answers.append(Answer(429, {"status": 0, "errors": ["message limit reached"]},
                                   {"X-Limit-App-Remaining": "0", "X-Limit-App-Reset": "1767225600"}))
    client = client_for(pushover.url)
    with pytest.raises(NotifyError, match="message limit reached") as failure:
        client.send(build_message("hello"))
    assert failure.value.status == 429 and not failure.value.is_final
    assert client.quota is not None and client.quota.remaining == 0 and client.quota.reset_at == 1767225600


def test_a_status_0_with_200_is_a_refusal(pushover: FakePushover) -> None:
    pushover.answers.append(Answer(200, {"status": 0, "errors": ["message cannot be blank"]}))
    with pytest.raises(NotifyError, match="message cannot be blank"):
        client_for(pushover.url).send(build_message("x"))


def test_a_slow_api_times_out(pushover: FakePushover) -> None:
    held = threading.Event()
    pushover.answers.append(Answer(hold=held))
    try:
        with pytest.raises(NotifyError, match=r"no answer from Pushover within 0.2s") as failure:
            client_for(pushover.url, timeout_s=0.2).send(build_message("hello"))
    finally:
        held.set()
    assert not failure.value.is_final


def test_no_network_is_reported() -> None:
    url = f"http://127.0.0.1:{free_port()}/1/messages.json"
    with pytest.raises(NotifyError, match=f"cannot reach Pushover at {url}"):
        client_for(url).send(build_message("hello"))


def test_over_long_fields_are_cut_with_a_warning() -> None:
    warnings: list[str] = []
    message = build_message("x" * 2000, title="t" * 300, url_title="u" * 101, warn=warnings.append)
    assert len(message.message) == 1024 and len(message.title or "") == 250
    assert len(message.url_title or "") == 100
    assert "message is 2000 characters, Pushover allows 1024: cut to fit" in warnings


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"message": "  "}, "message cannot be blank"),
        ({"message": "x", "priority": 5}, "priority 5 is not allowed"),
        ({"message": "x", "priority": 2, "retry": 10}, "retry 10 is too short"),
        ({"message": "x", "priority": 2, "expire": 20000}, "expire 20000 is not allowed"),
        ({"message": "x", "priority": 2.0}, "priority 2.0 is not allowed"),  # Pushover takes "2", not "2.0"
        ({"message": "x", "priority": 2, "retry": 45.5}, "retry 45.5 is not allowed: use a whole number"),
    ],
)
def test_invalid_messages_are_refused(kwargs, reason) -> None:
    with pytest.raises(ValueError, match=reason):
        build_message(**kwargs)


def test_emergency_priority_gets_retry_and_expire_and_survives_storage() -> None:
    message = build_message("fire", priority=2)
    assert (message.retry, message.expire) == (60, 3600)
    assert Message.from_form(message.form()) == message
