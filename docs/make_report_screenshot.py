"""Make docs/report.png: the HTML report of a results store, opened in headless Chromium, as a screenshot.

    python docs/make_report_screenshot.py --results results [--out docs/report.png] [--html report.html]
        [--width 1280] [--height 1700] [--at tables]

It writes the report (`mobileone-bench report`), opens it from its file:// path with the network turned off, and
saves a PNG of the window (`--at`: scroll to that section first: measured, tables, figures, models). Needs
Selenium and Chromium with its driver (Debian: apt-get install chromium chromium-driver; pip install selenium).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path


def _chrome(width: int, height: int):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars",
                f"--window-size={width},{height}", "--proxy-server=127.0.0.1:9", "--force-device-scale-factor=1"):
        options.add_argument(arg)
    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if binary:
        options.binary_location = binary
    driver = shutil.which("chromedriver")
    service = Service(executable_path=driver) if driver else Service()
    browser = webdriver.Chrome(options=options, service=service)
    browser.execute_cdp_cmd("Network.enable", {})
    browser.execute_cdp_cmd("Network.emulateNetworkConditions", {"offline": True, "latency": 0,
                                                                 "downloadThroughput": 0, "uploadThroughput": 0})
    return browser


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", action="append", default=None, help="results folder (repeatable)")
    parser.add_argument("--out", default=str(Path(__file__).with_name("report.png")), help="the PNG to write")
    parser.add_argument("--html", default=None, help="also keep the report here (default: a temporary file)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1700)
    parser.add_argument("--at", default=None, help="section id to scroll to before the screenshot")
    args = parser.parse_args(argv)

    import mobileone_bench as mb

    with tempfile.TemporaryDirectory() as tmp:
        html = Path(args.html) if args.html else Path(tmp) / "report.html"
        written = mb.report(args.results or ["results"], out=html)
        browser = _chrome(args.width, args.height)
        try:
            browser.get(html.resolve().as_uri())
            if args.at:
                browser.execute_script("document.getElementById(arguments[0]).scrollIntoView()", args.at)
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            if not browser.save_screenshot(str(args.out)):
                print(f"error: could not save {args.out}", file=sys.stderr)
                return 1
        finally:
            browser.quit()
    print(f"{args.out}: screenshot of {written['out'] if args.html else 'the report'} "
          f"({written['bytes']} bytes, {written['records']} records)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
