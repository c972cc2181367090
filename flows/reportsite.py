"""The run's reports over http: a read-only static site of the GX Data Docs and the evaluation
report, and the server that serves it.

A Prefect artifact can only link to what the reviewer's browser opens: not a ``file://`` path
on the worker. So after the stages the flow copies what the reports show into the site
directory, one folder per version, named by the ``dvc.lock`` md5s of the outputs it shows: a run
that skipped a stage links to the same copy as the run that made it, and an old run's link keeps
showing that run's reports, not the newest. Layout (paths below the site's base URL)::

    data-docs/<md5 of reports/data_docs>/index.html   the Data Docs site as GX wrote it (its
                                                       validation result pages read offline too)
    evaluation/<key>/index.html                        every plot of dvc.yaml (`dvc plots show`,
                                                       vega inlined: renders offline)
    evaluation/<key>/files/...                         reports/evaluation/* and metrics/evaluate.json

Serve it (from the checkout root; read-only, GET and HEAD only, no directory listings)::

    python -m flows.reportsite [--site DIR] [--host 127.0.0.1] [--port 4280]

Settings, read from the environment by the flow and by the server:

* ``RNNFLOW_REPORTS_DIR``: the site directory (default ``<checkout>/.dvc/tmp/reports-site``,
  DVC's never-versioned scratch space);
* ``RNNFLOW_REPORTS_URL``: the base URL the artifacts link to (default ``http://127.0.0.1:4280``,
  this server's default address; set it to wherever reviewers reach the site);
* ``RNNFLOW_REPORTS_KEEP``: how many versions of each section the site keeps (default 50; the
  least recently installed go first).
"""
from __future__ import annotations

import argparse
import contextlib
import functools
import hashlib
import json
import os
import shutil
import tempfile
import urllib.error
import urllib.request
from collections.abc import Callable
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from flows import dvcstages
from tasks.core import artifacts
from tasks.core.common import TEMP_SUFFIX, remove_stale_temporaries

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4280
DEFAULT_KEEP = 50
SITE_SUBDIR = Path(".dvc/tmp/reports-site")
PLOTS_TEMPLATE = Path(__file__).parent / "assets" / "dvc_plots_offline.html"  # vega, vega-lite, vega-embed inlined


def site_dir(root: str | Path) -> Path:
    """Where the site lives: ``$RNNFLOW_REPORTS_DIR``, else ``<root>/.dvc/tmp/reports-site``."""
    configured = os.environ.get("RNNFLOW_REPORTS_DIR")
    return Path(configured) if configured else Path(root) / SITE_SUBDIR


def base_url() -> str:
    """The URL reviewers open the site at: ``$RNNFLOW_REPORTS_URL``, else this server's default address."""
    return (os.environ.get("RNNFLOW_REPORTS_URL") or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}").rstrip("/")


def keep_versions() -> int:
    """How many versions of each section the site keeps: ``$RNNFLOW_REPORTS_KEEP``, else 50."""
    return max(int(os.environ.get("RNNFLOW_REPORTS_KEEP") or DEFAULT_KEEP), 1)


def _install(site: Path, folder: str, build: Callable[[Path], None], keep: int | None = None) -> None:
    """Make ``site/folder`` with ``build(tmp)`` unless it exists: built beside it, then renamed into
    place, so a reader never sees half a folder and a version is never written twice. What a
    killed build left behind is removed first; past ``keep`` versions (:func:`keep_versions`) in
    the folder's section, the least recently installed go (their old links then answer 404)."""
    target = site / folder
    remove_stale_temporaries(target)
    if target.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=f".{os.getpid()}{TEMP_SUFFIX}", dir=target.parent))
    try:
        build(staging)
        with contextlib.suppress(OSError):  # another run installed the same version meanwhile: keep it
            staging.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    versions = sorted((path for path in target.parent.iterdir() if path.is_dir() and not path.name.startswith(".")),
                      key=lambda path: (path.stat().st_mtime_ns, path.name))
    for old in versions[: max(len(versions) - (keep or keep_versions()), 0)]:
        if old != target:
            shutil.rmtree(old, ignore_errors=True)


def validation_pages(docs: Path) -> dict[str, str]:
    """``{suite: page}``: each expectation suite's newest validation result page in a Data Docs site
    (``validations/<suite path>/<run name>/<run time>/<batch>.html``), paths relative to ``docs``.
    These pages are plain HTML; the index lists them with JavaScript from CDNs, blank offline."""
    newest: dict[Path, Path] = {}
    for page in (docs / "validations").glob("**/*.html"):
        suite_dir = page.parent.parent.parent
        if suite_dir not in newest or page.parent.name > newest[suite_dir].parent.name:
            newest[suite_dir] = page
    return {".".join(suite_dir.relative_to(docs / "validations").parts): page.relative_to(docs).as_posix()
            for suite_dir, page in sorted(newest.items())}


def publish_data_docs(root: Path, site: Path) -> dict[str, str] | None:
    """Copy the Data Docs of the ``dvc.lock`` version into the site; ``{"index": path, suite: path of
    its validation result}`` below the base URL (None when validate has recorded none: a failed or
    never-run validation)."""
    md5 = dvcstages.lock_outs(root, "validate")["validate"].get(str(artifacts.DATA_DOCS))
    if not md5 or not (root / artifacts.DATA_DOCS / "index.html").exists():
        return None
    folder = f"data-docs/{md5.removesuffix('.dir')}"
    _install(site, folder, lambda staging: shutil.copytree(root / artifacts.DATA_DOCS, staging, dirs_exist_ok=True))
    pages = validation_pages(site / folder)
    return {"index": f"{folder}/index.html", **{suite: f"{folder}/{page}" for suite, page in pages.items()}}


def evaluation_key(root: Path) -> str | None:
    """The evaluation report's version: the ``dvc.lock`` md5s of train's and evaluate's outputs."""
    outs = dvcstages.lock_outs(root)
    shown = {stage: outs.get(stage) for stage in ("train", "evaluate")}
    if not shown["evaluate"]:
        return None
    return hashlib.sha256(json.dumps(shown, sort_keys=True).encode()).hexdigest()[:16]


def publish_evaluation(root: Path, site: Path) -> dict[str, str] | None:
    """Render every plot of ``dvc.yaml`` offline (``dvc plots show`` with the vendored template) and
    copy the evaluation files beside it; ``{"report": path, file name: path}`` below the base URL."""
    key = evaluation_key(root)
    if key is None:
        return None
    folder = f"evaluation/{key}"
    files = [root / artifacts.EVALUATE_METRICS, *sorted((root / artifacts.REPORT_DIR).glob("*"))]

    def build(staging: Path) -> None:
        result = dvcstages.run_dvc(["plots", "show", "--html-template", str(PLOTS_TEMPLATE), "-o", str(staging)], root)
        if result.returncode != 0:
            raise RuntimeError(f"dvc plots show failed: {result.stdout.strip()[-1000:]}")
        (staging / "files").mkdir()
        for path in files:
            if path.is_file():
                shutil.copy2(path, staging / "files" / path.name)

    _install(site, folder, build)
    listed = {path.name: f"{folder}/files/{path.name}" for path in files if (site / folder / "files" / path.name).exists()}
    return {"report": f"{folder}/index.html", **listed}


def reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether ``url`` answers a HEAD request with success (the site is being served there)."""
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout) as response:
            return response.status < 400
    except (urllib.error.URLError, OSError, ValueError):
        return False


class ReadOnlyHandler(SimpleHTTPRequestHandler):
    """Files of the site, GET and HEAD only (anything else: 501); folders are not listed."""

    def list_directory(self, path):
        self.send_error(HTTPStatus.NOT_FOUND, "no listing")


def make_server(site: Path, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    site.mkdir(parents=True, exist_ok=True)
    return ThreadingHTTPServer((host, port), functools.partial(ReadOnlyHandler, directory=str(site)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.reportsite", description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, help="the site directory (default $RNNFLOW_REPORTS_DIR, else "
                                                  f"<checkout>/{SITE_SUBDIR})")
    parser.add_argument("--host", default=DEFAULT_HOST, help=f"address to bind (default {DEFAULT_HOST}: this machine only)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    args = parser.parse_args(argv)
    site = args.site or site_dir(dvcstages.find_root())
    server = make_server(site, args.host, args.port)
    print(f"rnnflow reports: serving {site} read-only at http://{args.host}:{server.server_address[1]}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    server.server_close()


if __name__ == "__main__":
    main()
