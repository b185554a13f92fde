"""``factorstream lockout``: ask a running worker's lockout API (``streams/api.py``).

Any worker answers for any subject or IP (it routes the request to the worker owning the
key), so the one in the settings (``stream.web_host``/``stream.web_port``) will do.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

import typer
from rich.markup import escape

from factorstream.cli.context import console, fail, settings_of

app = typer.Typer(
    help="Lockouts and IP blocks, from the stream worker's API.", no_args_is_help=True
)


class ApiError(Exception):
    """The worker did not give an answer (down, unreachable, refused the request)."""


def fetch(base: str, path: str, query: dict[str, str], *, timeout: float) -> dict[str, Any]:
    """GET ``base + path`` with ``query`` from the worker's API; the JSON answer."""
    url = base.rstrip("/") + path + (f"?{urlencode(query)}" if query else "")
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - http(s) only
            answer: dict[str, Any] = json.loads(response.read())
            return answer
    except urllib.error.HTTPError as error:
        body = error.read().decode(errors="replace")
        try:
            reason = str(json.loads(body).get("error") or body)
        except (ValueError, AttributeError):
            reason = body.strip() or error.reason
        if error.code == 503:
            reason = "no worker owns this key right now (the workers are rebalancing): try again"
        raise ApiError(f"the worker at {base} answered {error.code}: {reason}") from None
    except (urllib.error.URLError, OSError) as error:
        cause = error.reason if isinstance(error, urllib.error.URLError) else error
        raise ApiError(
            f"no worker answered at {base} ({cause}); is `factorstream worker` running there? "
            "(FACTORSTREAM_STREAM__WEB_HOST / FACTORSTREAM_STREAM__WEB_PORT, or --url)"
        ) from None


def describe_subject(answer: dict[str, Any]) -> str:
    who = escape(f"{answer['tenant']}/{answer['subject']}")
    if answer.get("factor"):
        who += escape(f" ({answer['factor']})")
    if not answer["locked"]:
        return f"{who}: [green]not locked[/]"
    until = "permanently" if answer["permanent"] else f"until {answer['until']}"
    return (
        f"{who}: [bold red]LOCKED[/] {until} (scope {answer['scope']}, "
        f"reason {escape(str(answer['reason']))})"
    )


def describe_ip(answer: dict[str, Any]) -> str:
    ip = escape(answer["ip"])
    if not answer["blocked"]:
        return f"IP {ip}: [green]not blocked[/]"
    if answer["reason"] == "idp_reported":  # streams.folds.ipblock.REPORTED (no worker here)
        why = f"blocked for tenant {escape(str(answer.get('tenant')))} by its identity provider"
    else:
        why = f"{answer['failures']} failures against {answer['distinct_subjects']} subjects"
    return (
        f"IP {ip}: [bold red]BLOCKED[/] until {answer['until']} (since {answer['since']}, "
        f"reason {escape(str(answer['reason']))}: {why})"
    )


@app.command()
def show(
    ctx: typer.Context,
    tenant: str = typer.Argument(..., help="The tenant."),
    subject: str = typer.Argument(..., help="The (pseudonymous) subject id."),
    factor: str | None = typer.Option(
        None, "--factor", help="Also that factor's own lock (totp, sms, voice, email, …)."
    ),
    ip: str | None = typer.Option(None, "--ip", help="Also whether this IP is blocked."),
    at: str | None = typer.Option(
        None, "--at", help="The moment to answer for (RFC 3339). Default: now, at the worker."
    ),
    url: str | None = typer.Option(
        None,
        "--url",
        help="The worker's API. Default: http://<stream.web_host>:<stream.web_port>.",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the API's answers as JSON."),
    timeout: float = typer.Option(5.0, min=0.1, help="Seconds to wait for the worker."),
) -> None:
    """Show whether a subject is locked out (and a factor, an IP), asking a running worker."""
    stream = settings_of(ctx).stream
    base = url or f"http://{stream.web_host}:{stream.web_port}"
    if urlsplit(base).scheme not in ("http", "https"):
        raise fail(f"--url: expected an http:// or https:// URL, found {base!r}")
    query = {"at": at} if at else {}
    path = f"/lockouts/{quote(tenant, safe='')}/{quote(subject, safe='/')}"
    try:
        answers = {"subject": fetch(base, path, _with_factor(query, factor), timeout=timeout)}
        if ip is not None:
            ip_path = f"/lockouts/ip/{quote(ip, safe=':')}"
            answers["ip"] = fetch(base, ip_path, {"tenant": tenant, **query}, timeout=timeout)
    except ApiError as error:
        raise fail(escape(str(error))) from None
    if as_json:
        console.print_json(json.dumps(answers))
        return
    console.print(describe_subject(answers["subject"]), soft_wrap=True)
    if "ip" in answers:
        console.print(describe_ip(answers["ip"]), soft_wrap=True)
    console.print(f"[dim]at {answers['subject']['at']}[/]", soft_wrap=True)


def _with_factor(query: dict[str, str], factor: str | None) -> dict[str, str]:
    return query if factor is None else {"factor": factor, **query}
