"""``factorstream audit``: verify the ledger, give and check proofs, erase, export.

Exit status is non-zero whenever something does not verify, naming the first bad
entry or the reason for the refusal.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import typer
from kafka.errors import KafkaError
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from audit.checkpoints import (
    Checkpoint,
    CheckpointError,
    load_signing_key,
    public_pem,
    rotate_signing_key,
)
from audit.export import write_export
from audit.ledger import Ledger, LedgerError, open_ledger
from audit.rows import ExportFilter
from audit.shredding import ShreddingError
from audit.verify import ProofRefused, check_proof_document, checkpoints_of, read_trusted_keys
from factorstream.cli.context import console, fail, redacted, settings_of
from factorstream.control_keys import control_signing_key
from factorstream.localkafka import KafkaUnavailable, topic_partitions
from factorstream.settings import Settings
from schemas.signing import key_id_of
from streams.topic_reading import read_to_end
from verifiers.publish import PublishFailed, publish_now

app = typer.Typer(
    help="The compliance ledger: verify, proofs, erasure, exports.", no_args_is_help=True
)
keys_app = typer.Typer(
    help="Signing keys: the ledger's checkpoints, control events.", no_args_is_help=True
)
app.add_typer(keys_app, name="keys")


def signing_key_path(settings: Settings) -> Path:
    return settings.key_file(settings.ledger.signing_key_file, "ledger-signing.pem")


def master_key_path(settings: Settings) -> Path:
    return settings.key_file(settings.ledger.master_key_file, "ledger-master.key")


def ledger_of(ctx: typer.Context, *, sign: bool = False, unseal: bool = False) -> Ledger:
    """The configured ledger; with only the keys the command needs."""
    settings = settings_of(ctx)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        return open_ledger(
            url=settings.ledger_database_url(),
            signing_key_file=signing_key_path(settings) if sign else None,
            master_key_file=master_key_path(settings) if unseal else None,
            checkpoint_every=settings.ledger.checkpoint_every,
            checkpoint_interval_s=settings.ledger.checkpoint_interval_s,
            create_keys=sign,
        )
    except (CheckpointError, ShreddingError) as error:
        raise fail(str(error)) from None


def _emit(document: dict[str, Any], output: Path | None) -> None:
    text = json.dumps(document, indent=2)
    if output is None:
        print(text)
    else:
        output.write_text(text + "\n")
        console.print(f"wrote [bold]{escape(str(output))}[/]")


Output = typer.Option(None, "--output", "-o", help="Write to this file instead of stdout.")
CheckpointFiles = typer.Option(
    [],
    "--checkpoint-file",
    help="Also check checkpoints kept elsewhere: a checkpoint or `audit.checkpoint.signed` "
    "event (JSON, JSON list or JSON Lines, e.g. read off the checkpoints topic).",
)
ProofFile = typer.Argument(..., help="A proof file from `prove` or `consistency`.")
PublicKeys = typer.Option(
    [],
    "--public-key",
    help="Trusted public key (PEM); repeat for rotated keys. Default: the keys kept in "
    "the ledger database.",
)
ExportOutput = typer.Option(..., "--output", "-o", help="File to write.")
Types = typer.Option([], "--type", help="Only this event type (repeatable).")


PinnedKeys = typer.Option(
    [],
    "--public-key",
    help="Pin a public key (PEM) that checkpoints may be signed by; repeat for rotated "
    "keys. A checkpoint signed by any other key fails, and keys the database holds that "
    "are not pinned are listed. Default: the setting ledger.public_key_files.",
)
FromTopic = typer.Option(
    True,
    "--checkpoints-topic/--no-checkpoints-topic",
    help="Also check every checkpoint published on the checkpoints topic (copies kept "
    "outside the database: a ledger rebuilt without some entries no longer matches them).",
)


@app.command()
def verify(
    ctx: typer.Context,
    checkpoint_file: list[Path] = CheckpointFiles,
    public_key: list[Path] = PinnedKeys,
    checkpoints_topic: bool = FromTopic,
) -> None:
    """Recompute the whole tree and check every signed checkpoint, against trust anchors
    kept outside the database: pinned public keys, and the checkpoints on the topic."""
    settings = settings_of(ctx)
    pinned_files = public_key or settings.ledger.public_key_files
    pinned = _pinned_keys(pinned_files) if pinned_files else None
    extra = []
    for path in checkpoint_file:
        try:
            extra += checkpoints_of(path.read_bytes())
        except OSError as error:
            raise fail(f"cannot read {path}: {error.strerror}") from None
        except ProofRefused as error:
            raise fail(f"{path}: {error}") from None
    from_topic = _topic_checkpoints(settings) if checkpoints_topic else []
    ledger = ledger_of(ctx)
    total = ledger.size()
    with Progress(
        "verifying", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console
    ) as progress:
        task = progress.add_task("entries", total=total)
        report = ledger.verify(
            progress=lambda done, _: progress.update(task, completed=done),
            extra_checkpoints=[*extra, *from_topic],
            pinned_keys=pinned,
        )
    for key_id in report.unpinned_keys:
        console.print(f"[yellow]![/] the database holds key {key_id}, which is not pinned")
    if not report.ok:
        for problem in report.problems:
            console.print(f"[red]✗[/] {escape(problem.message)}")
        first = report.first_bad_entry
        named = f"first bad entry: {first}" if first is not None else report.problems[0].message
        raise fail(f"the ledger does not verify — {named}")
    console.print(
        f"[green]✓[/] {report.size} entries and {report.checkpoints} signed checkpoints verify"
        + (f" ({report.unsigned} newest entries not yet signed)" if report.unsigned else "")
    )
    anchors = [f"{len(pinned)} pinned keys"] if pinned else []
    if checkpoints_topic:
        anchors.append(f"{len(from_topic)} checkpoints from {settings.topics.checkpoints}")
    if extra:
        anchors.append(f"{len(extra)} checkpoints from files")
    if not pinned and not from_topic and not extra:
        console.print(
            "[yellow]![/] nothing outside the database vouched for it: its own keys and "
            "checkpoints were used (pin keys with --public-key, or read the checkpoints topic)"
        )
    else:
        console.print(f"  anchored by {', '.join(anchors)}")


def _pinned_keys(paths: list[Path]) -> dict[str, Any]:
    try:
        return read_trusted_keys(paths)
    except ProofRefused as error:
        raise fail(str(error)) from None


def _topic_checkpoints(settings: Settings) -> list[Checkpoint]:
    """Every checkpoint on the checkpoints topic (a broker that cannot be reached fails)."""
    topic = settings.topics.checkpoints
    try:
        topic_partitions(settings.kafka(), timeout=5.0)  # no broker: fail in seconds
        records = list(read_to_end(settings.kafka(), topic, timeout_s=10))
    except (KafkaUnavailable, KafkaError, LookupError, OSError) as error:
        raise fail(
            f"cannot read the checkpoints topic {topic} on {settings.kafka().describe()} "
            f"({error}); pass --no-checkpoints-topic to verify without it"
        ) from None
    found = []
    for record in records:
        if record.value is None:
            continue
        try:
            found += checkpoints_of(record.value)
        except ProofRefused as error:
            raise fail(f"{topic} offset {record.offset}: {error}") from None
    return found


@app.command()
def prove(
    ctx: typer.Context,
    event_id: str = typer.Argument(..., help="Id of the event to prove."),
    checkpoint: int | None = typer.Option(
        None, "--checkpoint", help="Tree size of the checkpoint (default: the newest)."
    ),
    output: Path | None = Output,
) -> None:
    """An inclusion proof of one event against a signed checkpoint (JSON)."""
    try:
        document = ledger_of(ctx).prove(event_id, checkpoint=checkpoint)
    except LedgerError as error:
        raise fail(str(error)) from None
    _emit(document, output)


@app.command()
def consistency(
    ctx: typer.Context,
    old: int = typer.Argument(..., help="Tree size of the older checkpoint."),
    new: int | None = typer.Argument(None, help="Tree size of the newer one (default: newest)."),
    output: Path | None = Output,
) -> None:
    """A consistency proof between two checkpoints (JSON)."""
    try:
        document = ledger_of(ctx).consistency(old, new)
    except LedgerError as error:
        raise fail(str(error)) from None
    _emit(document, output)


@app.command("check-proof")
def check_proof(
    ctx: typer.Context,
    file: Path = ProofFile,
    public_key: list[Path] = PublicKeys,
) -> None:
    """Verify a proof offline: needs only the proof file and the public key."""
    try:
        text = file.read_bytes()
        pems = [path.read_bytes() for path in public_key]
    except OSError as error:
        raise fail(f"cannot read {error.filename}: {error.strerror}") from None
    if not pems:
        pems = [public_pem(key) for key in ledger_of(ctx).public_keys().values()]
    try:
        verified = check_proof_document(text, public_keys=pems)
    except ProofRefused as error:
        raise fail(f"proof refused: {error}") from None
    console.print(f"[green]✓[/] {escape(verified.summary)}")


@app.command()
def checkpoint(ctx: typer.Context) -> None:
    """Sign a checkpoint of the ledger now (if entries were added since the last one)."""
    signed = ledger_of(ctx, sign=True).tick(now=datetime.now(UTC), force=True)
    for made in signed:
        console.print(f"signed checkpoint of size {made.tree_size} (key {made.key_id[:16]}…)")
    if not signed:
        console.print("no new entries since the last checkpoint")


@app.command()
def erase(
    ctx: typer.Context,
    tenant: str = typer.Argument(..., help="The tenant."),
    subject: str = typer.Argument(..., help="The subject whose personal data to erase."),
    requested_by: str = typer.Option(..., help="Who asked (recorded in the event)."),
    reason: str = typer.Option("subject_request", help="Reason, snake_case."),
    ticket: str | None = typer.Option(None, help="Ticket or request reference."),
    yes: bool = typer.Option(False, "--yes", help="Do not ask for confirmation."),
    publish: bool = typer.Option(
        True,
        help="Publish the erasure event to the events topic, so the worker forgets the "
        "subject and the lake redacts it (--no-publish: the ledger only).",
    ),
) -> None:
    """Crypto-shred a subject's personal data everywhere (cannot be undone).

    Destroys the subject's data keys in the ledger and publishes the erasure event to the
    events topic: the worker forgets the subject and the lake sink redacts the lake."""
    if not yes and not typer.confirm(f"Erase the personal data of {tenant}/{subject} for good?"):
        raise fail("not erased")
    settings = settings_of(ctx)
    try:
        signer = control_signing_key(settings)
        erasure = ledger_of(ctx, sign=True).erase(
            tenant,
            subject,
            now=datetime.now(UTC),
            requested_by=requested_by,
            signer=signer,
            reason=reason,
            ticket=ticket,
        )
    except (LedgerError, ValueError) as error:
        raise fail(str(error)) from None
    console.print(
        f"erased {escape(tenant)}/{escape(subject)}: {len(erasure.key_ids)} data key(s) "
        f"destroyed; recorded event {erasure.event.id}, signed by control key "
        f"{erasure.event.signedby}"
    )
    _forget_in_outboxes(settings, tenant, subject)
    _end_trusted_devices(settings, tenant, subject, requested_by=requested_by)
    console.print(_topic_reach(settings))
    if not publish:
        return
    try:
        publish_now([erasure.event], kafka=settings.kafka(), topic=settings.topics.events)
    except PublishFailed as error:
        raise fail(
            f"the ledger is erased, but the event was not published ({error}): the worker and "
            "the lake keep the subject's data until it is. Run this command again once the "
            "broker is up (it records and publishes a new erasure event)."
        ) from None
    console.print(f"published the erasure to {escape(settings.topics.events)}")


def _end_trusted_devices(
    settings: Settings, tenant: str, subject: str, *, requested_by: str
) -> None:
    """The subject's trusted devices end at once: their rows leave the verifier database
    (a ``device.revoked``, reason ``subject_erased``, with no personal data, says how many
    were in force). Nothing to do where the verifiers keep no trusted devices."""
    from factorstream.cli.relay import outbox_urls
    from factorstream.service_config import service_config
    from verifiers import trusted_devices
    from verifiers.publish import outbox_engine
    from verifiers.service.server import open_store

    url = settings.outbox_database_url()
    if url not in outbox_urls(settings, existing=True):
        return
    engine = outbox_engine(url)
    try:
        kept = sa.inspect(engine).has_table("trusted_devices")
    finally:
        engine.dispose()
    if not kept:
        return
    store = open_store(service_config(settings))
    try:
        ended = trusted_devices.forget(
            store, tenant=tenant, subject=subject, now=datetime.now(UTC), requested_by=requested_by
        )
    finally:
        store.engine.dispose()
    console.print(f"trusted devices: {ended} of the subject ended, none left stored")


def _topic_reach(settings: Settings) -> str:
    """What erasure does not reach: the raw topics, until their retention deletes the
    subject's records (docs/retention.md)."""
    from factorstream.retention_config import topic_days

    kept = [f"{escape(topic)} {'for ever' if days is None else f'{days:g} days'}"
            for topic, days in topic_days(settings).items()]  # fmt: skip
    return (
        "the Kafka topics keep the subject's records until their retention deletes them: "
        + ", ".join(kept)
    )


def _forget_in_outboxes(settings: Settings, tenant: str, subject: str) -> None:
    """The subject's published rows leave every outbox this deployment has (the verifiers'
    and the dashboard's); rows not yet relayed stay until they are (deleting them would
    lose the events), and the command says so."""
    from factorstream.cli.relay import outbox_urls
    from verifiers.publish import Outbox, outbox_engine

    for url in outbox_urls(settings, existing=True):
        engine = outbox_engine(url)
        try:
            outbox = Outbox(engine)
            outbox.create()
            deleted, unsent = outbox.forget(tenant, subject)
        finally:
            engine.dispose()
        console.print(f"outbox {redacted(url)}: {deleted} published rows of the subject deleted")
        if unsent:
            console.print(
                f"[yellow]![/] {unsent} rows of the subject are not relayed yet and keep their "
                "data until they are: run this command again after the relay has sent them"
            )


def _moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise fail(f"--{name}: not an ISO 8601 date or time: {value!r}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


@app.command()
def export(
    ctx: typer.Context,
    fmt: str = typer.Option("jsonl", "--format", help="jsonl, csv, parquet or ocsf."),
    output: Path = ExportOutput,
    since: str | None = typer.Option(None, help="Events at or after (ISO 8601, UTC if bare)."),
    until: str | None = typer.Option(None, help="Events before (ISO 8601, UTC if bare)."),
    tenant: str | None = typer.Option(None, help="Only this tenant."),
    subject: str | None = typer.Option(None, help="Only this subject."),
    types: list[str] = Types,
) -> None:
    """Export ledger entries; erased personal data is marked, never shown."""
    if fmt not in ("jsonl", "csv", "parquet", "ocsf"):
        raise fail(f"--format must be jsonl, csv, parquet or ocsf, not {fmt!r}")
    where = ExportFilter(
        since=_moment(since, "since"),
        until=_moment(until, "until"),
        tenant=tenant,
        subject=subject,
        types=frozenset(types),
    )
    settings = settings_of(ctx)
    if not master_key_path(settings).exists():
        raise fail(f"no master key at {master_key_path(settings)}: personal data cannot be read")
    ledger = ledger_of(ctx, unseal=True)
    try:  # the filters go into SQL; write_export applies them again, as it documents
        written = write_export(ledger.rows(where), fmt=fmt, out=output, where=where)  # type: ignore[arg-type]
    except (OSError, ValueError) as error:
        raise fail(f"export failed: {error}") from None
    console.print(f"wrote {written} records to [bold]{escape(str(output))}[/]")


@keys_app.command("show")
def keys_show(ctx: typer.Context) -> None:
    """Print every public key that signed checkpoints (PEM), newest configured first."""
    for key_id, key in ledger_of(ctx).public_keys().items():
        console.print(f"# key id {key_id}")
        print(public_pem(key).decode(), end="")


@keys_app.command("control")
def keys_control(ctx: typer.Context) -> None:
    """Print the public key (PEM) that signs this machine's control events (erasures,
    unlocks); give it to every worker as `control.trusted_key_files`."""
    try:
        key = control_signing_key(settings_of(ctx)).public_key()
    except ValueError as error:
        raise fail(str(error)) from None
    console.print(f"# control key id {key_id_of(key)}")
    print(public_pem(key).decode(), end="")


@keys_app.command("rotate")
def keys_rotate(ctx: typer.Context) -> None:
    """Replace the signing key; the old public key stays in the database."""
    settings = settings_of(ctx)
    path = signing_key_path(settings)
    ledger = ledger_of(ctx, sign=True)  # registers nothing yet; makes the key if missing
    now = datetime.now(UTC)
    with ledger.engine.begin() as connection:  # the old key is kept before it goes
        ledger.register_key(connection, load_signing_key(path).public_key(), now=now)
    new = rotate_signing_key(path)
    with ledger.engine.begin() as connection:
        ledger.register_key(connection, new.public_key(), now=now)
    console.print(f"new signing key {key_id_of(new.public_key())} in {escape(str(path))}")
