"""Each transport against a real local receiver: the webhook receiver process (which checks
the signature as receivers do), a Slack-like endpoint, syslog over UDP and TCP."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import timedelta
from pathlib import Path

from alerts.config import Destination, GroupingPolicy, RetryPolicy
from alerts.delivery import deliver
from alerts.model import Alert, alert_of
from alerts.transports import HttpTransport, SyslogTcp, SyslogUdp
from factorstream.localkafka import free_port
from tests.factories import T0
from tests.integration.alerts.receivers import (
    CapturingHttp,
    TcpSyslog,
    UdpSyslog,
    WebhookReceiver,
    webhook_receiver,
)
from tests.support import wait_for
from tests.unit.alerts.fixtures import risk
from tests.unit.alerts.test_formats import RFC5424, _params

FAST = RetryPolicy(initial_s=0.1, max_s=0.5, give_up_after_s=30)


def _alerts(n: int) -> list[Alert]:
    found = [
        alert_of(risk(subject=f"u-{i}", at=T0 + timedelta(seconds=i)), GroupingPolicy())
        for i in range(n)
    ]
    return [a for a in found if a is not None]


def _secret(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_bytes(b"a-shared-secret\n")
    return path


def _webhook(url: str, secret: bytes = b"a-shared-secret") -> Destination:
    return Destination(name="soc", kind="webhook", url=url, secret=secret, timeout_s=5)


def test_a_signed_webhook_is_taken_and_a_wrongly_signed_one_refused_for_good(
    tmp_path: Path,
) -> None:
    alert = _alerts(1)[0]
    with webhook_receiver(free_port(), tmp_path / "got.jsonl", _secret(tmp_path)) as receiver:
        good = asyncio.run(HttpTransport(_webhook(receiver.url)).send(alert, "key-1"))
        forged = asyncio.run(HttpTransport(_webhook(receiver.url, b"guess")).send(alert, "key-2"))
        assert good.delivered
        assert (forged.delivered, forged.permanent, forged.reason) == (False, True, "HTTP 401")
        got = receiver.received()
    assert [line["key"] for line in got] == ["key-1"]
    assert got[0]["body"]["id"] == alert.id and got[0]["body"]["dedup_key"] == "key-1"


def test_a_receiver_answering_500_gets_the_alert_on_a_later_attempt(tmp_path: Path) -> None:
    alerts = _alerts(6)
    port = free_port()
    with webhook_receiver(
        port, tmp_path / "got.jsonl", _secret(tmp_path), "--fail-every", "2"
    ) as receiver:
        transport = HttpTransport(_webhook(receiver.url))

        async def send_all() -> list[int]:
            stop = asyncio.Event()
            results = [
                await deliver(transport, a, a.dedup_key("soc"), FAST, stop=stop) for a in alerts
            ]
            assert all(r.outcome.delivered for r in results)
            return [r.attempts for r in results]

        attempts = asyncio.run(send_all())
        got = receiver.received()
    assert max(attempts) == 2  # every second request answered 500, then taken
    assert sorted(line["body"]["id"] for line in got) == sorted(a.id for a in alerts)


def test_a_receiver_down_for_a_while_gets_the_alert_once_back(tmp_path: Path) -> None:
    alert = _alerts(1)[0]
    receiver = WebhookReceiver(free_port(), tmp_path / "got.jsonl", _secret(tmp_path))
    transport = HttpTransport(_webhook(receiver.url))
    starter = threading.Timer(2.0, receiver.start)
    starter.start()
    try:
        started = time.monotonic()
        result = asyncio.run(deliver(transport, alert, "k", FAST, stop=asyncio.Event()))
        assert result.outcome.delivered and result.attempts > 2
        assert time.monotonic() - started >= 2.0
        assert [line["key"] for line in receiver.received()] == ["k"]
    finally:
        starter.join()
        receiver.kill()


def test_a_receiver_down_past_the_give_up_time_leaves_the_alert_undelivered(tmp_path: Path) -> None:
    transport = HttpTransport(_webhook(f"http://127.0.0.1:{free_port()}/"))
    short = RetryPolicy(initial_s=0.1, max_s=0.2, give_up_after_s=1.0)
    started = time.monotonic()
    result = asyncio.run(deliver(transport, _alerts(1)[0], "k", short, stop=asyncio.Event()))
    assert not result.outcome.delivered and not result.outcome.permanent
    assert "Connection" in result.outcome.reason
    assert result.attempts >= 3 and time.monotonic() - started < 5


def test_slack_gets_text_and_blocks() -> None:
    with CapturingHttp() as slack:
        destination = Destination(name="slack", kind="slack", url=slack.url)
        outcome = asyncio.run(HttpTransport(destination).send(_alerts(1)[0], "key"))
        assert outcome.delivered
        wait_for(lambda: slack.bodies, what="the Slack message")
    message = slack.bodies[0]
    assert set(message) == {"text", "blocks"}
    assert message["blocks"][0]["type"] == "header"


def test_syslog_over_udp_arrives_as_rfc_5424() -> None:
    alerts = _alerts(3)
    with UdpSyslog() as listener:
        destination = Destination(name="siem", kind="syslog", host="127.0.0.1", port=listener.port)
        transport = SyslogUdp(destination)
        for alert in alerts:
            assert asyncio.run(transport.send(alert, alert.dedup_key("siem"))).delivered
        transport.close()
        wait_for(lambda: len(listener.messages) == 3, what="three datagrams")
    keys = []
    for message in listener.messages:
        parsed = RFC5424.match(message)
        assert parsed is not None, message
        keys.append(_params(parsed["sd"])["dedup"])
    assert keys == [a.dedup_key("siem") for a in alerts]


def test_syslog_over_tcp_writes_again_what_a_dropped_connection_lost() -> None:
    alerts = _alerts(8)
    with TcpSyslog() as listener:
        destination = Destination(
            name="siem", kind="syslog", host="127.0.0.1", port=listener.port, transport="tcp"
        )
        transport = SyslogTcp(destination)

        async def scenario() -> None:
            for alert in alerts[:4]:
                assert (await transport.send(alert, alert.dedup_key("siem"))).delivered
            await transport.confirm()
            listener.drop()  # the collector restarts: what is written now is lost at first
            await asyncio.sleep(0.2)
            stop = asyncio.Event()
            for alert in alerts[4:]:  # a write fails (broken pipe): retried on a new connection
                result = await deliver(transport, alert, alert.dedup_key("siem"), FAST, stop=stop)
                assert result.outcome.delivered
            await transport.confirm()  # what the dead connection swallowed is written again

        asyncio.run(scenario())
        wait_for(
            lambda: len({_key(m) for m in listener.messages}) == 8, what="all eight", timeout=10
        )
        transport.close()
    assert {_key(m) for m in listener.messages} == {a.dedup_key("siem") for a in alerts}


def _key(message: bytes) -> str:
    parsed = RFC5424.match(message)
    assert parsed is not None, message
    return _params(parsed["sd"])["dedup"]
