"""Identity-provider adapters: their files, and settings → the values ``sources`` takes.

An adapter is a name (``acme-auth0``) with two files in the state directory
(``idp.state_dir``, default ``<data_dir>/idp``): ``adapters/<name>.json`` says which
provider, tenant, source and API (nothing secret), ``credentials/<name>.json`` holds the
secrets, mode 0600, written once by ``factorstream idp add`` from a file or standard
input. Cursors, locks and unmapped records sit in ``cursors/``.

The mappings are a registry (:data:`MAPPINGS`): a provider's module in ``sources`` with a
function ``map_records(record, config)`` (one record may say several things: an Entra
sign-in is a sign-in, its MFA steps and a risk verdict) and the config class the adapter's
tenant and source fill.
"""

from __future__ import annotations

import importlib
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from factorstream.settings import Settings
from schemas import Event
from sources.cursors import CursorStore, check_name, write_atomically
from sources.pages import LogClient
from sources.polling import Mapper, PollSchedule, UnmappedLog
from sources.unmapped import Unmapped

ProviderName = Literal["auth0", "okta", "keycloak", "entra"]
PROVIDERS: Final[tuple[str, ...]] = ("auth0", "okta", "keycloak", "entra")
LOOPBACK: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def utc_now() -> datetime:
    """The clock the front door passes to ``sources``."""
    return datetime.now(UTC)


# -- the mapping registry ----------------------------------------------------------------


@dataclass(frozen=True)
class MappingEntry:
    """Where a provider's pure mapping lives: ``module.function(record, module.config(
    tenant=…, source=…))``."""

    module: str
    function: str
    config: str


MAPPINGS: Final[Mapping[str, MappingEntry]] = {
    "auth0": MappingEntry("sources.auth0", "map_records", "Auth0Source"),
    "okta": MappingEntry("sources.okta", "map_records", "OktaSource"),
    "keycloak": MappingEntry("sources.keycloak", "map_records", "KeycloakSource"),
    "entra": MappingEntry("sources.entra", "map_records", "EntraSource"),
}
"""Each provider's mapping. A provider whose module is missing cannot be polled or
ingested (:class:`NoMapping`), and says so."""


class NoMapping(Exception):
    pass


def mapper_for(provider: str, tenant: str, source: str) -> Mapper:
    entry = MAPPINGS[provider]
    try:
        module = importlib.import_module(entry.module)
    except ModuleNotFoundError as exc:
        raise NoMapping(f"{provider}: its mapping ({entry.module}) is not installed") from exc
    function: Callable[[Any, Any], Sequence[Event | Unmapped]] = getattr(module, entry.function)
    config = getattr(module, entry.config)(tenant=tenant, source=source)
    return lambda record: function(record, config)


# -- adapters and their credentials -------------------------------------------------------


class Adapter(BaseModel):
    """An adapter's configuration (``adapters/<name>.json``): nothing secret."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    provider: ProviderName
    tenant: str = Field(min_length=1, max_length=128)
    source: str = Field(min_length=1, max_length=512)
    base_url: str = Field(min_length=1)
    realm: str | None = None
    """Keycloak: the realm."""
    directory: str | None = None
    """Entra: the directory (tenant) id."""
    login_url: str | None = None
    """Entra: the token endpoint's host (default ``https://login.microsoftonline.com``)."""
    start_from: str | None = None
    """Auth0: the log id to start after (default: the oldest log retained)."""

    @field_validator("base_url", "login_url")
    @classmethod
    def _https(cls, url: str | None) -> str | None:
        """Credentials and tokens travel to these URLs: HTTPS, or plain HTTP to this host."""
        if url is None:
            return url
        parsed = httpx.URL(url)
        if parsed.scheme == "https" and parsed.host:
            return url
        if parsed.scheme == "http" and parsed.host in LOOPBACK:
            return url
        raise ValueError(f"{url}: an https:// URL (plain http only to this machine)")


REQUIRED: Final[Mapping[str, tuple[frozenset[str], ...]]] = {
    "auth0": (frozenset({"client_id", "client_secret"}),),
    "okta": (frozenset({"api_token"}), frozenset({"client_id", "private_key_pem"})),
    "keycloak": (frozenset({"client_id", "client_secret"}),),
    "entra": (frozenset({"client_id", "client_secret"}),),
}
"""The keys a provider's credentials need (one of the sets)."""

OPTIONAL: Final[Mapping[str, frozenset[str]]] = {
    "auth0": frozenset({"audience", "log_stream_token"}),
    "okta": frozenset({"key_id", "event_hook_secret", "event_hook_header"}),
    "keycloak": frozenset(),
    "entra": frozenset(),
}


class BadCredentials(ValueError):
    pass


def check_credentials(provider: str, credentials: Any) -> dict[str, str]:
    """The credentials, or :class:`BadCredentials` naming what is missing or unknown
    (never a value)."""
    if not isinstance(credentials, dict) or not all(
        isinstance(v, str) and v for v in credentials.values()
    ):
        raise BadCredentials("credentials are a JSON object of non-empty strings")
    keys = set(credentials)
    allowed = set().union(*REQUIRED[provider], OPTIONAL[provider])
    if unknown := keys - allowed:
        raise BadCredentials(f"{provider}: unknown credential keys {sorted(unknown)}")
    if not any(needed <= keys for needed in REQUIRED[provider]):
        wanted = " or ".join(str(sorted(needed)) for needed in REQUIRED[provider])
        raise BadCredentials(f"{provider}: credentials need {wanted}")
    return dict(credentials)


@dataclass(frozen=True)
class AdapterFiles:
    """The state directory's layout."""

    root: Path

    @property
    def cursors(self) -> CursorStore:
        return CursorStore(self.root / "cursors")

    def config_path(self, name: str) -> Path:
        return self.root / "adapters" / f"{check_name(name)}.json"

    def credentials_path(self, name: str) -> Path:
        return self.root / "credentials" / f"{check_name(name)}.json"

    def unmapped_path(self, name: str) -> Path:
        return self.root / "cursors" / f"{check_name(name)}.unmapped.jsonl"

    def unmapped(self, name: str) -> UnmappedLog:
        return UnmappedLog(self.unmapped_path(name))

    def add(self, adapter: Adapter, credentials: dict[str, str]) -> None:
        """Write both files (0600); an adapter of that name already there is refused."""
        if self.config_path(adapter.name).exists():
            raise FileExistsError(f"adapter {adapter.name} exists")
        write_atomically(self.credentials_path(adapter.name), json.dumps(credentials).encode())
        write_atomically(self.config_path(adapter.name), adapter.model_dump_json(indent=1).encode())

    def names(self) -> list[str]:
        directory = self.root / "adapters"
        return sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []

    def load(self, name: str) -> Adapter:
        try:
            return Adapter.model_validate_json(self.config_path(name).read_bytes())
        except FileNotFoundError:
            raise KeyError(f"no adapter {name} (factorstream idp add)") from None
        except ValidationError as exc:
            raise ValueError(f"{self.config_path(name)}: {exc}") from None

    def credentials(self, adapter: Adapter) -> dict[str, str]:
        path = self.credentials_path(adapter.name)
        if os.stat(path).st_mode & 0o077:
            raise PermissionError(f"{path} is open to other users: chmod 600 it")
        return check_credentials(adapter.provider, json.loads(path.read_bytes()))


def adapter_files(settings: Settings) -> AdapterFiles:
    return AdapterFiles(settings.idp_state_dir())


# -- settings → sources' values ------------------------------------------------------------


def schedule(settings: Settings) -> PollSchedule:
    idp = settings.idp
    return PollSchedule(idp.poll_interval_s, idp.backoff_initial_s, idp.backoff_max_s)


def http_client(settings: Settings) -> httpx.AsyncClient:
    """The HTTP client of the provider APIs: TLS verified, no redirects followed (a token
    is never sent to another host), the settings' timeout; ``HTTPS_PROXY``, ``NO_PROXY``
    and ``SSL_CERT_FILE`` from the environment are honoured (httpx reads no ``.netrc``)."""
    return httpx.AsyncClient(
        timeout=settings.idp.request_timeout_s, follow_redirects=False, trust_env=True
    )


def log_client(
    settings: Settings,
    adapter: Adapter,
    credentials: Mapping[str, str],
    http: httpx.AsyncClient,
    clock: Callable[[], datetime],
) -> LogClient:
    """The provider client of ``adapter``."""
    from sources.auth0_api import Auth0Api, Auth0LogClient
    from sources.entra_api import EntraApi, EntraSignInClient
    from sources.keycloak_api import KeycloakApi, KeycloakEventClient
    from sources.okta_api import OktaApi, OktaLogClient

    idp = settings.idp
    margin = idp.token_refresh_margin_s
    if adapter.provider == "auth0":
        auth0 = Auth0Api(
            base_url=adapter.base_url,
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
            audience=credentials.get("audience"),
            page_size=idp.page_size,
            start_from=adapter.start_from,
        )
        return Auth0LogClient(auth0, http, clock, margin)
    if adapter.provider == "okta":
        okta = OktaApi(
            base_url=adapter.base_url,
            api_token=credentials.get("api_token"),
            client_id=credentials.get("client_id"),
            private_key_pem=credentials.get("private_key_pem"),
            key_id=credentials.get("key_id"),
            page_size=idp.page_size,
            lookback_s=idp.lookback_s,
        )
        return OktaLogClient(okta, http, clock, margin)
    if adapter.provider == "keycloak":
        if not adapter.realm:
            raise ValueError(f"adapter {adapter.name}: Keycloak needs a realm")
        keycloak = KeycloakApi(
            base_url=adapter.base_url,
            realm=adapter.realm,
            client_id=credentials["client_id"],
            client_secret=credentials["client_secret"],
            page_size=idp.page_size,
            lookback_s=idp.lookback_s,
        )
        return KeycloakEventClient(keycloak, http, clock, margin)
    if not adapter.directory:
        raise ValueError(f"adapter {adapter.name}: Entra needs a directory (tenant) id")
    entra = EntraApi(
        directory=adapter.directory,
        client_id=credentials["client_id"],
        client_secret=credentials["client_secret"],
        graph_url=adapter.base_url,
        login_url=adapter.login_url or "https://login.microsoftonline.com",
        page_size=idp.page_size,
        lookback_s=idp.lookback_s,
    )
    return EntraSignInClient(entra, http, clock, margin)


def event_delivery(settings: Settings) -> Any:
    """The acknowledged delivery to the events topic (``sources.delivery``)."""
    from sources.delivery import EventDelivery
    from verifiers.kafka_connection import aiokafka_config

    return EventDelivery(aiokafka_config(settings.kafka()), topic=settings.topics.events)


def webhook_routers(settings: Settings, delivery: Any) -> list[Any]:
    """The webhook receivers of every adapter with a webhook secret, for the ingest app
    to mount: ``POST /v1/idp/<name>/auth0-log-stream`` (Auth0 credentials with a
    ``log_stream_token``) and ``GET``/``POST /v1/idp/<name>/okta-event-hook`` (Okta
    credentials with an ``event_hook_secret``; header ``event_hook_header``, default
    ``Authorization``)."""
    from sources.webhooks import Receiver, auth0_log_stream_router, okta_event_hook_router

    files = adapter_files(settings)
    routers = []
    for name in files.names():
        adapter = files.load(name)
        credentials = files.credentials(adapter)
        receiver = Receiver(
            mapper=mapper_for(adapter.provider, adapter.tenant, adapter.source),
            delivery=delivery,
            unmapped=files.unmapped(name),
            clock=utc_now,
            max_body_bytes=settings.idp.webhook_max_body_bytes,
        )
        if adapter.provider == "auth0" and "log_stream_token" in credentials:
            routers.append(
                auth0_log_stream_router(
                    path=f"/v1/idp/{name}/auth0-log-stream",
                    token=credentials["log_stream_token"],
                    receiver=receiver,
                )
            )
        elif adapter.provider == "okta" and "event_hook_secret" in credentials:
            routers.append(
                okta_event_hook_router(
                    path=f"/v1/idp/{name}/okta-event-hook",
                    header=credentials.get("event_hook_header", "Authorization"),
                    secret=credentials["event_hook_secret"],
                    receiver=receiver,
                )
            )
    return routers
