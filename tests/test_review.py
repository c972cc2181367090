"""What a reviewer opens besides the Prefect UI: run names, the read-only reports site, inlined
figures, and `dvc plots show` / `dvc plots diff` rendering offline in headless Chromium.

The Prefect UI itself (the artifacts rendered, the Data Docs link followed) is checked on a real
server in tests/test_flow_ui.py; the failure alert in tests/test_flow_server.py.
"""
from __future__ import annotations

import base64
import configparser
import io
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import ROOT, run
from test_flow_ui import CHROMIUM, chromium

from flows import dvcstages, pipeline, reports, reportsite
from tasks.core.common import TEMP_SUFFIX

# --------------------------------------------------------------------------- run names


def test_run_names_say_dataset_kind_overrides_and_commit():
    params = {"ingest": {"dataset": "clothing_reviews", "kind": "auto"}}
    assert pipeline.describe_run(params, None, "1a2b3c4d5e6f", "rnnflow-nightly") == \
        "rnnflow-nightly: clothing_reviews text_classification @1a2b3c4"
    assert pipeline.describe_run(params, {"train.text_classification.epochs": "3", "train.text_classification.units": 64},
                                 "1a2b3c4d5e6f+dirty") == "clothing_reviews text_classification train.epochs=3 train.units=64 @1a2b3c4+dirty"
    # An override of the dataset changes the kind the name shows, as it changes what ingest makes.
    assert pipeline.describe_run(params, {"ingest.dataset": "brown"}, "") == \
        "brown language_model ingest.dataset=brown @no-commit"
    assert pipeline.describe_run({"ingest": {"dataset": "movie_reviews", "kind": "language_model"}}, None, "abcdef0") == \
        "movie_reviews language_model @abcdef0"


# --------------------------------------------------------------------------- the reports site


@pytest.fixture
def site(tmp_path):
    """A reports site with one file, served on 127.0.0.1 by :func:`flows.reportsite.make_server`."""
    root = tmp_path / "site"
    (root / "data-docs" / "abc").mkdir(parents=True)
    (root / "data-docs" / "abc" / "index.html").write_text("<title>Data Docs</title>suite text_classification")
    (tmp_path / "secret.txt").write_text("outside the site")
    server = reportsite.make_server(root, port=0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def status(url: str, method: str = "GET") -> int:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method=method, data=b"x" if method in ("POST", "PUT") else None),
                                    timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def test_reports_site_is_read_only_and_local(site):
    root, url = site
    assert reportsite.make_server.__defaults__[0] == "127.0.0.1"  # bound to this machine unless told otherwise
    with urllib.request.urlopen(f"{url}/data-docs/abc/index.html", timeout=5) as response:
        assert "text_classification" in response.read().decode()
    assert status(f"{url}/data-docs/abc/index.html", "POST") == 501
    assert status(f"{url}/data-docs/abc/index.html", "PUT") == 501
    assert status(f"{url}/data-docs/abc/index.html", "DELETE") == 501
    assert status(f"{url}/data-docs/") == 404  # no listings
    assert status(f"{url}/../secret.txt") == 404
    assert (root / "data-docs/abc/index.html").read_text().startswith("<title>")
    assert reportsite.reachable(f"{url}/data-docs/abc/index.html")
    assert not reportsite.reachable(f"{url}/data-docs/missing/index.html")


def test_links_only_to_a_site_that_answers(site):
    _, url = site
    docs = f"{url}/data-docs/abc/index.html"
    assert reports.site_link("Data Docs", docs, True) == f"[Data Docs]({docs})"
    silent = reports.site_link("Data Docs", docs, False)
    assert "](" not in silent and f"`{docs}`" in silent and "python -m flows.reportsite" in silent
    assert "not published" in reports.site_link("Data Docs", None, False)


def test_site_removes_what_a_killed_build_left_and_keeps_the_newest_versions(tmp_path):
    site = tmp_path / "site"
    killed = site / "evaluation" / f".v0.abc.{2 ** 22 + 7}{TEMP_SUFFIX}"  # a build whose process is gone
    killed.mkdir(parents=True)
    for number in range(4):
        reportsite._install(site, f"evaluation/v{number}", lambda staging: (staging / "index.html").write_text("report"),
                            keep=3)
        time.sleep(0.01)  # distinct install times
    assert not killed.exists()
    assert sorted(path.name for path in (site / "evaluation").iterdir()) == ["v1", "v2", "v3"]
    reportsite._install(site, "evaluation/v1", lambda staging: None, keep=3)  # present: left as it is
    assert (site / "evaluation" / "v1" / "index.html").read_text() == "report"


def test_figures_are_inlined_small(tmp_path):
    from PIL import Image

    big = tmp_path / "plots" / "roc.png"
    big.parent.mkdir()
    Image.new("RGB", (2400, 1200), "white").save(big)
    text = reports.figures_markdown("Evaluation figures", [Path("plots/roc.png")], tmp_path, ["[report](http://x/)"])
    uri = text.split("](data:image/png;base64,", 1)[1].split(")", 1)[0]
    with Image.open(io.BytesIO(base64.b64decode(uri))) as image:
        assert image.size == (reports.FIGURE_MAX_WIDTH, reports.FIGURE_MAX_WIDTH // 2)
    assert "## Roc" in text and "`plots/roc.png`" in text and text.endswith("- [report](http://x/)")


# --------------------------------------------------------------------------- offline plots

# Vega draws on canvas (or SVG): count the plots that drew something, offline.
DRAWN_PLOTS = """(() => {
  const canvases = [...document.querySelectorAll('canvas')].filter(c => c.width > 0 && c.height > 0 && (() => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < data.length; i += 4) if (data[i + 3] > 0 && (data[i] < 200 || data[i + 1] < 200)) return true;
    return false; })());
  const svgs = [...document.querySelectorAll('svg')].filter(s => s.querySelectorAll('path, rect, line').length > 10);
  return canvases.length + svgs.length; })()"""


def drawn_plots_offline(page, html: Path) -> int:
    page.call("Network.enable")
    page.call("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1, uploadThroughput=-1)
    page.open(html.as_uri())
    time.sleep(3)  # scripts run and vega renders; nothing to wait for when they cannot load
    return page.js(DRAWN_PLOTS)


def configured_template() -> Path:
    """The HTML template the project's .dvc/config names (relative paths are relative to .dvc)."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".dvc" / "config")
    return (ROOT / ".dvc" / config["plots"]["html_template"].strip()).resolve()


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium not installed (Debian: apt-get install chromium)")
def test_dvc_plots_show_and_diff_render_offline(trained_project, tmp_path):
    template = configured_template()
    assert template == reportsite.PLOTS_TEMPLATE.resolve() and "cdn.jsdelivr" not in template.read_text()
    run(["dvc", "plots", "show", "--html-template", str(template), "-o", str(tmp_path / "show")], trained_project)
    run(["dvc", "plots", "diff", "HEAD", "--html-template", str(template), "-o", str(tmp_path / "diff")], trained_project)
    run(["dvc", "plots", "show", "-o", str(tmp_path / "cdn")], trained_project)  # dvc-render's own template
    with chromium() as page:
        assert drawn_plots_offline(page, tmp_path / "cdn" / "index.html") == 0  # what the issue saw: empty boxes
        assert drawn_plots_offline(page, tmp_path / "show" / "index.html") >= 4  # training curves, ROC, PR, confusion
        assert drawn_plots_offline(page, tmp_path / "diff" / "index.html") >= 4


@pytest.mark.slow
def test_site_keeps_one_copy_per_version(trained_project, tmp_path):
    site = tmp_path / "site"
    docs = reportsite.publish_data_docs(trained_project, site)
    md5 = dvcstages.lock_outs(trained_project)["validate"]["reports/data_docs"].removesuffix(".dir")
    assert docs["index"] == f"data-docs/{md5}/index.html" and all((site / page).is_file() for page in docs.values())
    # One result page per suite, each naming its suite (readable offline, unlike the index's table).
    suites = {name for name in docs if name != "index"}
    assert suites == {f"text_classification.{part}" for part in ("schema", "row", "table", "classes")}
    assert all(suite in (site / docs[suite]).read_text() for suite in suites)
    published = reportsite.publish_evaluation(trained_project, site)
    report = site / published["report"]
    assert "vegaEmbed" in report.read_text() and "cdn.jsdelivr" not in report.read_text()
    assert {"evaluate.json", "worst_examples.csv"} <= set(published) and (site / published["evaluate.json"]).is_file()
    stamp = report.stat().st_mtime_ns
    assert reportsite.publish_evaluation(trained_project, site) == published  # the same version: not built again
    assert report.stat().st_mtime_ns == stamp
    assert sorted(path.name for path in (site / "evaluation").iterdir()) == [Path(published["report"]).parent.name]
