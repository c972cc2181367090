"""The flow run as a person sees it: headless Chromium opens the Prefect UI's flow run page.
Screenshots of what it saw go to a temp dir (the path is printed: `pytest -s`) for a person to look at.

Needs Debian's chromium (`apt-get install chromium`); skipped without it. The UI is a
single-page app that keeps polling the API, so `--dump-dom` snapshots it before it has
rendered: the test drives Chromium over the DevTools protocol instead (websockets, which
Prefect already depends on), clicks the page's tabs and reads the rendered text.
"""
from __future__ import annotations

import base64
import contextlib
import json
import shutil
import subprocess
import tempfile
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import pytest

from test_flow_server import STAGES, artifacts, flow_run, shared_first_run, shared_server, wait_for

pytestmark = pytest.mark.slow

CHROMIUM = next((path for path in ("/usr/bin/chromium", shutil.which("chromium"), shutil.which("chromium-browser")) if path
                 and Path(path).exists()), None)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "--window-size=1600,1200",
         "--remote-debugging-address=127.0.0.1", "--remote-debugging-port=0"]


class Page:
    """One Chromium tab driven through the Chrome DevTools protocol."""

    def __init__(self, websocket):
        self.websocket = websocket
        self.next_id = 0

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.websocket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.websocket.recv(timeout=30))
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise AssertionError(f"{method}: {message['error']}")
                return message["result"]

    def js(self, expression: str) -> Any:
        return self.call("Runtime.evaluate", expression=expression, returnByValue=True)["result"].get("value")

    def text(self) -> str:
        return self.js("document.body ? document.body.innerText : ''") or ""

    def open(self, url: str) -> None:
        self.call("Page.navigate", url=url)

    def screenshot(self, path: Path) -> Path:
        """The visible page as a PNG at ``path``."""
        path.write_bytes(base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"]))
        return path

    def wait_for_js(self, expression: str, what: str, timeout: float = 60) -> Any:
        """The value of ``expression`` once it is truthy."""
        try:
            return wait_for(lambda: self.js(expression), timeout, what)
        except AssertionError as error:
            raise AssertionError(f"{error}\npage text:\n{self.text()[:4000]}") from None

    def click_tab(self, tab_id: str, label: str) -> None:
        """Click one of the flow run page's tabs (`<li class="p-tab" id="task-runs">`)."""
        clicked = self.js(
            f"(() => {{ const tab = document.getElementById({json.dumps(tab_id)}) || [...document.querySelectorAll('.p-tab')]"
            f".find(e => e.innerText.trim() === {json.dumps(label)}); if (!tab) return false; tab.click(); return true; }})()"
        )
        assert clicked, f"no '{label}' tab on the page:\n{self.text()[:2000]}"

    def wait_for_text(self, *needles: str, timeout: float = 60) -> str:
        def found():
            text = self.text()
            assert "Can't connect to Server API" not in text, text[:1000]
            return text if all(needle in text for needle in needles) else None

        try:
            return wait_for(found, timeout, f"{needles} on the page")
        except AssertionError as error:
            raise AssertionError(f"{error}\npage text:\n{self.text()[:4000]}") from None


@contextlib.contextmanager
def chromium() -> Iterator[Page]:
    profile = tempfile.mkdtemp(prefix="rnnflow-chromium-")
    process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        port_file = Path(profile) / "DevToolsActivePort"  # Chromium writes the port it chose here
        wait_for(lambda: port_file.exists() and port_file.read_text().strip(), 30, "Chromium's DevTools port")
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as response:
            target = next(t for t in json.load(response) if t["type"] == "page")
        from websockets.sync.client import connect

        with connect(target["webSocketDebuggerUrl"], max_size=None, open_timeout=10) as websocket:
            page = Page(websocket)
            page.call("Page.enable")
            yield page
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def ui_run(tmp_path_factory) -> tuple[Any, dict[str, Any]]:
    if CHROMIUM is None:
        pytest.skip("Chromium not installed (Debian: apt-get install chromium); the Prefect UI check needs a browser")
    server = shared_server(tmp_path_factory)
    return server, shared_first_run(server, tmp_path_factory)


def test_flow_run_page_shows_stage_tasks_and_metrics_artifact(ui_run):
    server, first = ui_run
    run_id = first["flow_run_id"]
    metrics = json.loads((first["project"] / "metrics/evaluate.json").read_text())
    with chromium() as page:
        page.open(f"{server.url}/runs/flow-run/{run_id}")
        page.wait_for_text("rnnflow-pipeline", "Task Runs", "Artifacts")
        page.click_tab("task-runs", "Task Runs")
        text = page.wait_for_text(*(f"{stage} (ran)" for stage in STAGES), "gpu")
        assert "Completed" in text
        page.click_tab("artifacts", "Artifacts")
        page.wait_for_text("rnnflow-metrics", "rnnflow-validation", "rnnflow-champion", "rnnflow-train-progress")

        # The metrics artifact's own page renders the table: this run's values are on it.
        artifact = artifacts(server, run_id)["rnnflow-metrics"]
        page.open(f"{server.url}/artifacts/artifact/{artifact.id}")
        text = page.wait_for_text("rnnflow-metrics", "roc_auc", "macro_f1", "majority_baseline")
        assert str(metrics["roc_auc"]) in text and str(metrics["macro_f1"]) in text


# Rendered figures: <img> elements of the artifact's markdown that decoded (natural width > 0), by alt text.
DECODED_IMAGES = "Object.fromEntries([...document.querySelectorAll('img')].filter(i => i.complete && i.naturalWidth > 0)" \
                 ".map(i => [i.alt, i.naturalWidth]))"


def test_run_page_shows_the_figures_the_data_docs_and_what_ran(ui_run, tmp_path_factory):
    server, first = ui_run
    run_id = first["flow_run_id"]
    found = artifacts(server, run_id)
    name = flow_run(server, run_id).name
    suite = json.loads((first["project"] / "reports/validation/summary.json").read_text())["suite"]
    shots = tmp_path_factory.mktemp("ui-screenshots")
    print(f"\nscreenshots of the Prefect UI: {shots}")
    with chromium() as page:
        page.open(f"{server.url}/runs/flow-run/{run_id}")
        page.wait_for_text(name, "Artifacts")
        assert name.startswith("table text_classification @")  # the dataset, the kind, the commit
        page.click_tab("artifacts", "Artifacts")
        page.wait_for_text("rnnflow-figures", "rnnflow-eda-figures", "rnnflow-validation")
        page.screenshot(shots / "1-run-artifacts.png")

        page.open(f"{server.url}/artifacts/artifact/{found['rnnflow-figures'].id}")
        images = page.wait_for_js(f"(() => {{ const d = {DECODED_IMAGES}; return Object.keys(d).length >= 3 && d; }})()",
                                  "the evaluation figures to render")
        assert images["Roc"] > 0 and images["Confusion"] > 0 and images["Precision recall"] > 0, images
        page.screenshot(shots / "2-evaluation-figures.png")

        page.open(f"{server.url}/artifacts/artifact/{found['rnnflow-eda-figures'].id}")
        images = page.wait_for_js(f"(() => {{ const d = {DECODED_IMAGES}; return Object.keys(d).length >= 2 && d; }})()",
                                  "the EDA figures to render")
        assert images["Class counts"] > 0, images

        page.open(f"{server.url}/artifacts/artifact/{found['rnnflow-validation'].id}")
        links = page.wait_for_js("(() => { const a = [...document.querySelectorAll('a')].filter(a => a.href.includes('/data-docs/'))"
                                 ".map(a => [a.innerText, a.href]); return a.length > 1 && a; })()", "the Data Docs links")
        assert all(href.startswith(first["site"].url + "/data-docs/") for _, href in links), links
        index = next(href for text, href in links if "Data Docs" in text)
        result = next(href for text, href in links if "/validations/" in href)  # a suite's result of this run
        page.screenshot(shots / "3-validation.png")
        page.open(index)  # as a click does: the link's own address
        page.wait_for_text("Data Docs", "Expectation Suites")
        page.open(result)
        page.wait_for_text(f"Expectation Suite: {suite}.", "Status: Succeeded")
        page.screenshot(shots / "4-data-docs-result.png")
