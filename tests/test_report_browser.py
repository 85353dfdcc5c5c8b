"""The HTML report in a real browser (issue 31): headless Chromium driven by Selenium opens the page from its
``file://`` path with the network turned off (Chrome DevTools' ``Network.emulateNetworkConditions`` offline, and a
proxy that leads nowhere), and the page must make no request, log no console error, draw every figure with a size,
sort a table when a header is clicked, fit a phone's width, and leave a screenshot for a person to look at.

Skipped, with the reason, where Selenium, Chromium or chromedriver is missing (Debian: ``apt-get install chromium
chromium-driver``); ``.ci/run`` installs them and sets ``MOBILEONE_BENCH_REQUIRE_BROWSER=1``, which turns such a skip
into a failure. The screenshot goes to ``$MOBILEONE_BENCH_ARTIFACTS/report.png`` when that is set (CI keeps it).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

import mobileone_bench as mb
from mobileone_bench.store.records import ResultsStore
from tests.test_report import MODELS, add_explain, add_latency, add_profile

REQUIRED = os.environ.get("MOBILEONE_BENCH_REQUIRE_BROWSER", "").strip() not in ("", "0")


def _missing() -> str | None:
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install selenium: the test extra)"
    if not (shutil.which("chromium") or shutil.which("chromium-browser")):
        return "no Chromium (Debian: apt-get install chromium)"
    if not shutil.which("chromedriver"):
        return "no chromedriver (Debian: apt-get install chromium-driver)"
    return None


def _skip_or_fail(why: str) -> None:
    if REQUIRED:
        pytest.fail(f"MOBILEONE_BENCH_REQUIRE_BROWSER is set but {why}")
    pytest.skip(why)


@pytest.fixture(scope="module")
def page(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("browser")
    store = ResultsStore(root / "results")
    for model in MODELS:
        add_profile(store, model)
        add_latency(store, model, replaced=model == "mobileone_s0")
    add_latency(store, "mnasnet-a1", contended=True)
    add_explain(store, "mobileone_s0")
    add_explain(store, "mobileone_s0", plan=True)
    out = root / "report.html"
    mb.report(store.root, out=out)
    return out


@pytest.fixture(scope="module")
def browser(page) -> Any:
    why = _missing()
    if why:
        _skip_or_fail(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1600",
                "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>", "--force-device-scale-factor=1",
                "--disable-background-networking", "--disable-component-update", "--no-first-run"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=shutil.which("chromedriver")))
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                    "downloadThroughput": 0, "uploadThroughput": 0})
        driver.get(page.resolve().as_uri())
        yield driver
    finally:
        driver.quit()


def test_the_page_opens_offline_and_makes_no_request(browser, page):
    assert browser.title == "mobileone-bench report: 6 models, 15 records"
    assert browser.execute_script("return document.readyState") == "complete"
    sent = []
    for entry in browser.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            sent.append(message["params"]["request"]["url"])
    assert [u for u in sent if u != page.resolve().as_uri()] == [], sent
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0


def test_the_console_has_no_error(browser):
    errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
    assert errors == []


def test_every_figure_renders_with_a_size(browser):
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.figure-svg, svg.dist-svg')).map(function (s) {"
        "  var r = s.getBoundingClientRect(); return [s.getAttribute('class'), r.width, r.height]; });")
    # Figures 1 and 2 and three proxies for cpu onnxruntime; where the time goes (two figures) for the two runtimes
    # with explain records (cpu onnxruntime, iphone coreml)
    assert len([s for s in sizes if s[0] == "figure-svg"]) == 6 + 2 * 2
    assert len([s for s in sizes if s[0] == "dist-svg"]) == 7  # one per latency record shown
    assert all(w > 100 and h > 50 for _, w, h in sizes), sizes
    titled = browser.execute_script("return document.querySelectorAll('svg.figure-svg g.point > title').length")
    assert titled >= 6 * 6  # each of our points in every panel (and the paper's) has a hover title


def _column(browser, table_id: str, index: int) -> list[str]:
    return browser.execute_script(
        "var column = arguments[1];"
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' > .scroll > table.sortable > tbody > tr'))"
        ".map(function (r) { return r.cells[column].getAttribute('data-sort'); });", table_id, index)


def test_clicking_a_header_sorts_the_table(browser):
    from selenium.webdriver.common.by import By

    headers = browser.find_elements(By.CSS_SELECTOR, "#table9 > .scroll > table.sortable > thead th")
    names = [h.get_attribute("textContent").strip() for h in headers]
    flops = names.index("FLOPs (M)")
    before = _column(browser, "table9", flops)
    browser.execute_script("arguments[0].scrollIntoView()", headers[flops])
    headers[flops].click()
    ascending = [float(v) for v in _column(browser, "table9", flops)]
    assert ascending == sorted(ascending) and ascending != [float(v) for v in before]
    assert headers[flops].get_attribute("aria-sort") == "ascending"
    headers[flops].click()
    descending = [float(v) for v in _column(browser, "table9", flops)]
    assert descending == sorted(ascending, reverse=True)
    assert headers[flops].get_attribute("aria-sort") == "descending"
    model = names.index("Model")
    headers[model].click()
    text = _column(browser, "table9", model)
    assert text == sorted(text) and headers[flops].get_attribute("aria-sort") == "none"


def test_a_link_leads_to_its_record(browser):
    from selenium.webdriver.common.by import By

    link = browser.find_element(By.CSS_SELECTOR, "#table9 tbody a[href^='#rec-']")
    target = link.get_attribute("href").split("#", 1)[1]
    browser.execute_script("arguments[0].scrollIntoView()", link)
    link.click()
    assert browser.execute_script("return location.hash") == f"#{target}"
    assert browser.execute_script("return document.querySelector(':target').id") == target


def test_the_page_fits_a_phone_and_a_screenshot_is_kept(browser, tmp_path):
    browser.set_window_size(1280, 1600)
    browser.execute_script("window.scrollTo(0, 0)")
    folder = Path(os.environ.get("MOBILEONE_BENCH_ARTIFACTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 20_000
    browser.set_window_size(390, 844)
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 1, overflow  # wide tables scroll inside their own box
    sizes = browser.execute_script(
        "return Array.from(document.querySelectorAll('svg.figure-svg')).map(function (s) {"
        "  return s.getBoundingClientRect().width; });")
    assert sizes and all(0 < w <= 390 for w in sizes), sizes
    assert browser.save_screenshot(str(folder / "report-phone.png"))
    browser.set_window_size(1280, 1600)
