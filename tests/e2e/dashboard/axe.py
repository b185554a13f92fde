"""axe-core in the browser test: fetched from npm once (pinned version, checked digest)
into the shared cache, injected into the open page, and its serious or critical
violations described; and the browser's console errors.

axe-core is not vendored: it is MPL-2.0 and ~550 kB of minified JavaScript the dashboard
never serves; ``npm pack`` of one pinned tarball, whose SHA-512 is checked against the
one written here, gives every machine the same file from the registry npm already trusts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from factorstream.settings import Settings
from tests.support import missing

AXE_VERSION = "4.14.1"
AXE_INTEGRITY = (  # npm's dist.integrity of that version
    "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5q"
    "b2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
)
FAILING_IMPACTS = frozenset({"serious", "critical"})

RUN_AXE = """
var done = arguments[arguments.length - 1];
axe.run(document, {resultTypes: ['violations']})
  .then(function (r) { done(JSON.stringify(r.violations)); })
  .catch(function (e) { done(JSON.stringify({error: String(e)})); });
"""


def _integrity(tarball: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()


def axe_source(cache_dir: Path | None = None) -> str:
    """``axe.min.js`` of :data:`AXE_VERSION`, from the cache or else ``npm pack``."""
    home = (cache_dir or Settings().cache_dir).expanduser() / f"axe-core-{AXE_VERSION}"
    script = home / "axe.min.js"
    if script.exists():
        return script.read_text(encoding="utf-8")
    npm = shutil.which("npm")
    if npm is None:
        missing("axe-core", "npm is not on PATH (apt-get install npm)")
    home.mkdir(parents=True, exist_ok=True)
    packed = subprocess.run(  # noqa: S603 - npm from PATH, a pinned package
        [npm, "pack", f"axe-core@{AXE_VERSION}", "--pack-destination", str(home), "--json"],
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    if packed.returncode != 0:
        missing("axe-core", f"npm pack axe-core@{AXE_VERSION} failed: {packed.stderr[-400:]}")
    tarball = home / json.loads(packed.stdout)[0]["filename"]
    content = tarball.read_bytes()
    if (found := _integrity(content)) != AXE_INTEGRITY:
        raise AssertionError(f"axe-core {AXE_VERSION}: expected {AXE_INTEGRITY}, found {found}")
    with tarfile.open(fileobj=io.BytesIO(content), mode="r:gz") as archive:
        member = archive.extractfile("package/axe.min.js")
        assert member is not None, "axe-core's tarball has no package/axe.min.js"
        source = member.read().decode("utf-8")
    partial = script.with_suffix(".part")
    partial.write_text(source, encoding="utf-8")
    partial.replace(script)  # atomic: a concurrent run reads the whole file or none
    tarball.unlink()
    return source


@dataclass(frozen=True)
class Violation:
    page: str
    rule: str
    impact: str
    help_url: str
    targets: tuple[str, ...]

    def __str__(self) -> str:
        return f"{self.page}: [{self.impact}] {self.rule} {list(self.targets)} {self.help_url}"


def serious_violations(page: str, violations: list[dict[str, Any]]) -> list[Violation]:
    """axe's violations of impact serious or critical, one per rule (pure)."""
    return [
        Violation(
            page=page,
            rule=str(v["id"]),
            impact=str(v.get("impact")),
            help_url=str(v.get("helpUrl")),
            targets=tuple(
                " ".join(str(t) for t in node.get("target", [])) for node in v.get("nodes", [])
            ),
        )
        for v in violations
        if v.get("impact") in FAILING_IMPACTS
    ]


def run_axe(driver: Any, source: str, page: str) -> list[Violation]:
    """Inject axe-core into the open page (unless there) and run it on the document."""
    if not driver.execute_script("return typeof window.axe !== 'undefined';"):
        driver.execute_script(source)
    driver.set_script_timeout(120)
    answer = json.loads(driver.execute_async_script(RUN_AXE))
    if isinstance(answer, dict):
        raise AssertionError(f"axe-core failed on {page}: {answer['error']}")
    return serious_violations(page, answer)


def console_errors(driver: Any) -> list[str]:
    """The browser log's SEVERE entries since the last call (reading drains the log)."""
    return [e["message"] for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
