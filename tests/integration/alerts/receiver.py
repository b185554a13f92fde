"""A webhook receiver for the tests, run as a process of its own (so a test can kill it):
``python receiver.py PORT LOG SECRET_FILE [--fail-every N] [--status S] [--delay S]``.

Each POST is checked with the verification receivers copy (``alerts.signing.verify``);
a genuine one is appended to LOG as a JSON line (fsync'd) *before* it is answered, so a
kill between the two leaves a request the sender retries: a duplicate with the same key.
``--die-after N`` kills the process (``os._exit``) right after recording the N-th
request, before answering it: a crash mid-request. ``--fail-every N`` answers every N-th
request 500 (not recorded); ``--status S`` answers every request S (not recorded); a
forged or stale request gets 401.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from alerts.signing import DEDUP_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, verify


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("log", type=Path)
    parser.add_argument("secret_file", type=Path)
    parser.add_argument("--fail-every", type=int, default=0)
    parser.add_argument("--status", type=int, default=200)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--die-after", type=int, default=0)
    args = parser.parse_args()
    secret = args.secret_file.read_bytes().strip()
    lock = threading.Lock()
    seen = [0]

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            time.sleep(args.delay)
            genuine = verify(
                secret,
                body,
                self.headers.get(TIMESTAMP_HEADER),
                self.headers.get(SIGNATURE_HEADER),
                now=time.time(),
            )
            with lock:
                seen[0] += 1
                n = seen[0]
                failing = args.status != 200 or (args.fail_every and n % args.fail_every == 0)
                if genuine and not failing:
                    line = {"key": self.headers.get(DEDUP_HEADER), "body": json.loads(body)}
                    with args.log.open("a") as out:
                        out.write(json.dumps(line) + "\n")
                        out.flush()
                        os.fsync(out.fileno())
                    if args.die_after and sum(1 for _ in args.log.open()) >= args.die_after:
                        os._exit(1)  # taken, never answered
            if not genuine:
                status = 401
            elif failing:
                status = args.status if args.status != 200 else 500
            else:
                status = 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *more: object) -> None:  # noqa: A002
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    print(f"listening on {args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
