"""``factorstream ingest serve`` as a process on the real broker, called by clients with no
factorstream code (curl, Node's fetch): structured, binary and batch events land in the
topic once; with the broker killed the answer is 503 with Retry-After, and after it
restarts every acknowledged event is in the log exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.integration.records import consume
from tests.integration.test_service_cli import free_port, tool
from tests.kafka_broker import KafkaBroker

NODE_CLIENT = Path(__file__).resolve().parent / "node" / "ingest.mjs"


@dataclass
class Ingest:
    url: str
    process: subprocess.Popen[str]
    env: dict[str, str]
    credential: str
    topic: str


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our interpreter, our CLI
        [sys.executable, "-m", "factorstream.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout


@pytest.fixture
def ingest(kafka_broker: KafkaBroker, topic: str, tmp_path: Path) -> Iterator[Ingest]:
    port = free_port()
    env = {
        **os.environ,
        "FACTORSTREAM_DATA_DIR": str(tmp_path / "data"),
        "FACTORSTREAM_KAFKA_BOOTSTRAP": kafka_broker.bootstrap,
        "FACTORSTREAM_INGEST__PORT": str(port),
        "FACTORSTREAM_INGEST__EVENTS_TOPIC": topic,
        "FACTORSTREAM_INGEST__DELIVERY_TIMEOUT_S": "3",
        "FACTORSTREAM_INGEST__RETRY_AFTER_S": "2",
    }
    credential = cli(env, "ingest", "credentials", "add", "--tenant", "acme").strip()
    log = (tmp_path / "ingest.log").open("w")  # a file, not a pipe nobody drains
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "factorstream.cli", "ingest", "serve"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _answers(url):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"ingest did not start: {(tmp_path / 'ingest.log').read_text()}")
        time.sleep(0.1)
    served = Ingest(url, process, env, credential, topic)
    try:
        yield served
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=30)
        log.close()
        out = (tmp_path / "ingest.log").read_text()
        assert process.returncode == 0, out
        assert "ingest stopped" in out


def _answers(url: str) -> bool:
    done = subprocess.run(  # noqa: S603
        ["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", f"{url}/v1/health"],
        capture_output=True,
        text=True,
        timeout=10,
    )
    return done.stdout == "200"


def event(subject: str, tenant: str = "acme") -> dict[str, object]:
    """An event as a client in any language writes it: a plain JSON document."""
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": "urn:example:curl-login",
        "type": "mfa.verification.failed",
        "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "subject": subject,
        "datacontenttype": "application/json",
        "dataschema": "urn:factorstream:schema:mfa.verification.failed:v1",
        "tenant": tenant,
        "partitionkey": f"{tenant}/{subject}",
        "correlationid": f"c-{subject}",
        "data": {"factor": "totp", "reason": "invalid_code", "attempt": 1},
    }


def curl(ingest: Ingest, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], str]:
    """POST with curl; the status, the response headers (lower-case) and the body."""
    args = [
        "curl",
        "-sS",
        "-D",
        "-",
        "-X",
        "POST",
        f"{ingest.url}/v1/events",
        "--data-binary",
        "@-",
    ]
    args += ["-H", f"Authorization: Bearer {ingest.credential}"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run(args, input=body, capture_output=True, timeout=60)  # noqa: S603
    assert done.returncode == 0, done.stderr
    head, _, text = done.stdout.decode().partition("\r\n\r\n")
    status_line, *lines = head.split("\r\n")
    found = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}
    return int(status_line.split()[1]), found, text


STRUCTURED = {"Content-Type": "application/cloudevents+json"}
BATCH = {"Content-Type": "application/cloudevents-batch+json"}


def binary_request(document: dict[str, object]) -> tuple[dict[str, str], bytes]:
    attributes = {k: v for k, v in document.items() if k not in ("data", "datacontenttype")}
    headers = {f"ce-{name}": str(value) for name, value in attributes.items()}
    headers["Content-Type"] = str(document["datacontenttype"])
    return headers, json.dumps(document["data"]).encode()


def test_curl_posts_structured_binary_and_batch_events_each_lands_once(ingest: Ingest) -> None:
    tool("curl")
    single = {**event("curl-1"), "comexampleticket": "T-42"}
    status, _, body = curl(ingest, STRUCTURED, json.dumps(single).encode())
    assert status == 202, body
    as_binary = event("curl-2")
    status, _, body = curl(ingest, *binary_request(as_binary))
    assert status == 202, body
    batch = [event(f"curl-{n}") for n in range(3, 8)]
    status, _, body = curl(ingest, BATCH, json.dumps(batch).encode())
    assert status == 202, body
    assert json.loads(body) == {"accepted": 5, "ids": [e["id"] for e in batch]}
    refused = [event("curl-8"), event("curl-9", tenant="globex")]
    status, headers, body = curl(ingest, BATCH, json.dumps(refused).encode())
    assert status == 403 and headers["content-type"] == "application/problem+json"
    assert [(e["index"], e["error"]) for e in json.loads(body)["errors"]] == [(1, "other_tenant")]

    records = consume(ingest.env["FACTORSTREAM_KAFKA_BOOTSTRAP"], ingest.topic, at_least=7)

    sent = [single, as_binary, *batch]
    assert Counter(r.event().id for r in records) == Counter(str(e["id"]) for e in sent)
    by_id = {r.event().id: r for r in records}
    assert by_id[str(single["id"])].event().extensions == {"comexampleticket": "T-42"}
    for record in records:
        assert record.key == record.event().partitionkey.encode()
        assert ("content-type", b"application/cloudevents+json") in record.headers


def test_a_node_client_with_fetch_posts_each_mode(ingest: Ingest) -> None:
    node = tool("node")
    done = subprocess.run(  # noqa: S603
        [node, str(NODE_CLIENT)],
        env={
            "PATH": os.environ["PATH"],
            "INGEST": ingest.url,
            "CREDENTIAL": ingest.credential,
            "TENANT": "acme",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    steps = {line["step"]: line for line in map(json.loads, done.stdout.splitlines())}
    assert {name: step["status"] for name, step in steps.items()} == {
        "structured": 202,
        "binary": 202,
        "batch": 202,
        "other tenant": 403,
    }
    acknowledged = [i for name in ("structured", "binary", "batch") for i in steps[name]["ids"]]

    records = consume(ingest.env["FACTORSTREAM_KAFKA_BOOTSTRAP"], ingest.topic, at_least=5)

    assert Counter(r.event().id for r in records) == Counter(acknowledged)
    assert all(r.event().extensions == {"comexamplerelease": "2026.12"} for r in records)
    assert {r.event().source for r in records} == {"urn:example:node-login"}  # %3A decoded


def test_broker_down_gives_503_and_after_restart_every_acknowledged_event_is_there_once(
    ingest: Ingest, kafka_broker: KafkaBroker
) -> None:
    """Sequential requests: before, during and after a kill -9 of the broker. While it is
    down, each request is 503 with Retry-After; the client retries the same batch until it
    is acknowledged; at the end the log holds each acknowledged event exactly once."""
    tool("curl")
    acknowledged: list[str] = []
    before = [event(f"before-{n}") for n in range(20)]
    status, _, _ = curl(ingest, BATCH, json.dumps(before).encode())
    assert status == 202
    acknowledged += [str(e["id"]) for e in before]

    during = [event(f"during-{n}") for n in range(20)]
    with kafka_broker.outage():
        status, headers, body = curl(ingest, BATCH, json.dumps(during).encode())
        assert status == 503, body
        assert headers["retry-after"] == "2"
        assert json.loads(body)["error"] == "broker_unavailable"
    deadline = time.monotonic() + 120
    while True:  # the client's retry loop: the same batch, the same ids
        status, headers, body = curl(ingest, BATCH, json.dumps(during).encode())
        if status == 202:
            break
        assert status == 503 and time.monotonic() < deadline, body
        time.sleep(int(headers["retry-after"]))
    acknowledged += [str(e["id"]) for e in during]

    records = consume(ingest.env["FACTORSTREAM_KAFKA_BOOTSTRAP"], ingest.topic, at_least=40)

    assert Counter(r.event().id for r in records) == Counter(acknowledged)


def test_concurrent_clients_through_an_outage_lose_nothing_acknowledged(
    ingest: Ingest, kafka_broker: KafkaBroker
) -> None:
    """Four clients post batches the whole time while the broker is killed and restarted;
    each retries a 503 with the same batch. Every acknowledged event is in the log; an
    event appears twice only if its batch was answered 503 once (a partial write, which
    the pipeline drops by id), never otherwise."""
    tool("curl")
    stop = threading.Event()
    acknowledged: list[str] = []
    retried: set[str] = set()
    statuses: Counter[int] = Counter()
    lock = threading.Lock()

    def client(number: int) -> None:
        sequence = 0
        while not stop.is_set():
            batch = [event(f"c{number}-{sequence}-{n}") for n in range(10)]
            sequence += 1
            while True:
                status, headers, _ = curl(ingest, BATCH, json.dumps(batch).encode())
                with lock:
                    statuses[status] += 1
                if status == 202:
                    with lock:
                        acknowledged.extend(str(e["id"]) for e in batch)
                    break
                assert status == 503 and "retry-after" in headers
                with lock:
                    retried.update(str(e["id"]) for e in batch)
                time.sleep(0.5)

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    with kafka_broker.outage():
        time.sleep(5)
    time.sleep(5)
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(thread.is_alive() for thread in threads)
    assert statuses[503] > 0 and statuses[202] > 0

    records = consume(
        ingest.env["FACTORSTREAM_KAFKA_BOOTSTRAP"], ingest.topic, at_least=len(acknowledged)
    )

    counts = Counter(r.event().id for r in records)
    assert set(acknowledged) <= set(counts)
    assert {i for i, n in counts.items() if n > 1} <= retried
    assert set(counts) <= set(acknowledged) | retried


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP])
def test_serve_stops_cleanly_on_each_signal(tmp_path: Path, stop: signal.Signals) -> None:
    """No broker needed to start (the producer connects on the first request)."""
    port = free_port()
    env = {
        **os.environ,
        "FACTORSTREAM_DATA_DIR": str(tmp_path / "data"),
        "FACTORSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
        "FACTORSTREAM_INGEST__PORT": str(port),
    }
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "factorstream.cli", "ingest", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not _answers(f"http://127.0.0.1:{port}"):
            assert process.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        process.send_signal(stop)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, out
    assert "ingest stopped" in out and "Traceback" not in out
