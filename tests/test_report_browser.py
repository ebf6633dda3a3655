"""The HTML report as a reader opens it, in a real browser: headless Chromium loads
report.html with no script or console error, every image decodes, every in-page link lands on
an element, and a screenshot of the first page is kept in the test's tmp_path.

Chromium is driven through its command line (no browser-driver dependency): a copy of the page
gets a probe script at the very top of <head>, which records script errors, unhandled promise
rejections and console.error calls from the first script of the page on, and once the page has
loaded writes what it found as JSON into `<pre id="browser-check">`; `--dump-dom` prints the DOM
and the test reads the JSON back. Without a Chromium binary the tests skip, saying why.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from matplotlib import image as mpimg

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TIMEOUT = 120  # seconds of wall time for one Chromium call (about 1 s each here)
VIRTUAL_TIME_MS = 10_000  # the page's own clock: its load and timers run within this budget
WINDOW = (1280, 1600)  # width, height of the first page's screenshot
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# Registered before any script of the page: errors and console.error calls from then on, and,
# once the page's own load handlers have run, every image and every in-page link, as JSON in
# <pre id="browser-check">.
PROBE = """<script>(function () {
  var seen = {errors: [], console: []};
  window.addEventListener('error', function (e) {
    seen.errors.push(String(e.message || e.error) + ' at ' + (e.filename || '?') + ':' + e.lineno);
  });
  window.addEventListener('unhandledrejection', function (e) {
    seen.errors.push('unhandled promise rejection: ' + String(e.reason));
  });
  var consoleError = console.error;
  console.error = function () {
    seen.console.push(Array.prototype.map.call(arguments, String).join(' '));
    return consoleError.apply(console, arguments);
  };
  function lands(href) {
    var id = href.slice(1), unescaped = id;
    try { unescaped = decodeURIComponent(id); } catch (e) {}
    // '#' and '#top' scroll to the top of the page (HTML standard); any other needs an id
    return id === '' || id.toLowerCase() === 'top' ||
      document.getElementById(id) !== null || document.getElementById(unescaped) !== null;
  }
  function collect() {
    var toc = document.querySelector('nav#toc');
    var result = {
      title: document.title,
      charset: document.characterSet,
      errors: seen.errors,
      console_errors: seen.console,
      images: Array.prototype.map.call(document.images, function (img) {
        return {alt: img.alt, src: (img.getAttribute('src') || '').slice(0, 60),
                complete: img.complete, natural_width: img.naturalWidth};
      }),
      links: Array.prototype.map.call(document.querySelectorAll('a[href^="#"]'), function (a) {
        var href = a.getAttribute('href');
        return {href: href, text: a.textContent.trim().slice(0, 60), lands: lands(href)};
      }),
      toc: toc && Array.prototype.map.call(toc.querySelectorAll('a'), function (a) {
        var href = a.getAttribute('href') || '';
        return {href: href, text: a.textContent.trim().slice(0, 60),
                lands: href.charAt(0) === '#' && lands(href)};
      })
    };
    var out = document.createElement('pre');
    out.id = 'browser-check';
    out.textContent = JSON.stringify(result);
    document.documentElement.appendChild(out);
  }
  // after the page's own load handlers; written at once (img.decode() promises are not
  // waited for by --dump-dom, so the check reads complete and naturalWidth, which a broken
  // image leaves at 0)
  window.addEventListener('load', function () { setTimeout(collect, 0); });
})();</script>"""

RESULT = re.compile(r'<pre id="browser-check">(.*?)</pre>', re.S)
HEAD = re.compile(r"<head(?:\s[^>]*)?>", re.I)
HTML = re.compile(r"<html(?:\s[^>]*)?>", re.I)
DOCTYPE = re.compile(r"\s*<!doctype[^>]*>", re.I)
CHARSET = re.compile(r"\s*<meta\s[^>]*charset[^>]*>", re.I)


def chromium_binary() -> str | None:
    """The first of BROWSERS on PATH."""
    return next((found for name in BROWSERS if (found := shutil.which(name))), None)


@pytest.fixture(scope="module")
def chromium() -> str:
    binary = chromium_binary()
    if binary is None:
        pytest.skip(
            f"chromium not installed: none of {', '.join(BROWSERS)} on PATH "
            "(Debian: apt-get install chromium; .ci/run installs it when it can)"
        )
    return binary


def run_chromium(binary: str, profile: Path, args: list[str], page: Path) -> tuple[str, float]:
    """Headless Chromium on the local file `page` with `args`; its stdout and the wall time in
    seconds. The browser's process group is killed after TIMEOUT seconds (a test failure)."""
    command = [
        binary,
        "--headless=new",
        "--no-sandbox",  # needed as root (CI runs as root)
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--mute-audio",
        f"--user-data-dir={profile}",  # a profile of its own: calls in parallel do not collide
        f"--virtual-time-budget={VIRTUAL_TIME_MS}",
        *args,
        page.resolve().as_uri(),
    ]
    start = time.perf_counter()
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        encoding="utf-8",
        errors="replace",
        start_new_session=True,  # its own process group, so its children go with it
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        pytest.fail(f"chromium took over {TIMEOUT} s on {page}; stderr ends:\n{stderr[-3000:]}")
    seconds = time.perf_counter() - start
    print(f"chromium {' '.join(args)} {page.name}: {seconds:.2f} s")
    if process.returncode != 0:
        pytest.fail(f"chromium exited {process.returncode} on {page}; stderr:\n{stderr[-3000:]}")
    return stdout, seconds


def instrumented(page: str, base: Path) -> str:
    """`page` with PROBE as the first script: right after <head> (after its <meta charset>, which
    must stay within the first 1024 bytes), or after <html> or <!DOCTYPE> when there is no
    <head> tag; a <base> keeps the page's relative addresses pointing at its own folder."""
    found = HEAD.search(page) or HTML.search(page) or DOCTYPE.match(page)
    at = found.end() if found else 0
    if charset := CHARSET.match(page, at):
        at = charset.end()
    probe = f'<base href="{html.escape(base.resolve().as_uri())}/">{PROBE}'
    return page[:at] + probe + page[at:]


def browser_check(binary: str, page: Path, work: Path) -> dict[str, Any]:
    """What PROBE found when Chromium opened a copy of `page` (written to `work`)."""
    work.mkdir(parents=True, exist_ok=True)
    copy = work / f"{page.stem}.checked.html"
    copy.write_text(instrumented(page.read_text(encoding="utf-8"), page.parent), encoding="utf-8")
    dom, _ = run_chromium(binary, work / "profile-check", ["--dump-dom"], copy)
    found = RESULT.search(dom)
    assert found, f"{page.name}: no browser-check result; the page never finished loading"
    return json.loads(html.unescape(found.group(1)))


def problems(result: dict[str, Any]) -> list[str]:
    """One line per problem a reader would meet in `result`, the empty list for none."""
    lines = [f"script error: {e}" for e in result["errors"]]
    lines += [f"console error: {e}" for e in result["console_errors"]]
    for i, img in enumerate(result["images"]):
        if not (img["complete"] and img["natural_width"] > 0):
            name = img["alt"] or img["src"]
            lines.append(f"image {i} ({name}) does not decode (naturalWidth 0 after load)")
    for link in result["links"]:
        if not link["lands"]:
            lines.append(f"link {link['href']} ({link['text']}) has no element with that id")
    return lines


def screenshot(binary: str, page: Path, out: Path) -> np.ndarray:
    """The first page of `page` at WINDOW as a PNG at `out`; its pixels, decoded."""
    size = f"--window-size={WINDOW[0]},{WINDOW[1]}"
    args = [f"--screenshot={out}", size, "--hide-scrollbars"]
    run_chromium(binary, out.parent / "profile-screenshot", args, page)
    assert out.is_file(), f"chromium wrote no screenshot at {out}"
    assert out.read_bytes()[:8] == PNG_SIGNATURE, out
    return mpimg.imread(out)


# --- the checker itself, on pages made to fail and to pass ----------------------------------


def png_bytes() -> bytes:
    buffer = io.BytesIO()
    mpimg.imsave(buffer, np.full((3, 4, 3), 0.5), format="png")
    return buffer.getvalue()


def write_page(folder: Path, name: str, body: str, head: str = "") -> Path:
    """A small page in `folder`, with the PNG `figur.png` beside it that CLEAN shows."""
    (folder / "figur.png").write_bytes(png_bytes())
    html_page = (
        "<!DOCTYPE html><html lang='sv'><head><meta charset='utf-8'>"
        f"{head}<title>Prov</title></head><body>{body}</body></html>"
    )
    (folder / name).write_text(html_page, encoding="utf-8")
    return folder / name


# two in-page links and the top of the page, an embedded image, a file beside the page (the
# checked copy lies elsewhere) shown lazily far below the first screen, and a script that runs
CLEAN = (
    "<nav id='toc'><a href='#första'>Första</a> <a href='#andra'>Andra</a></nav>"
    "<h2 id='första'>Första</h2><img alt='inbäddad' src='data:image/png;base64,{png}'>"
    "<h2 id='andra'>Andra</h2><img alt='fil' loading='lazy' style='margin-top:4000px'"
    " src='figur.png'><a href='#'>upp</a>"
    "<script>document.title = 'Prov: ' + document.images.length;</script>"
)


def clean_body() -> str:
    return CLEAN.format(png=base64.b64encode(png_bytes()).decode())


def test_the_browser_check_reports_a_broken_anchor_an_undecodable_image_and_errors(
    chromium, tmp_path
):
    # the throwing script is the first of <head>: the probe must be registered before it
    broken = write_page(
        tmp_path,
        "broken.html",
        clean_body()
        + "<a href='#ingenstans'>trasig</a><img alt='trasig' src='data:image/png;base64,AAAA'>"
        + "<script>console.error('synlig i konsolen');</script>",
        head="<script>throw new Error('boom i head');</script>",
    )
    result = browser_check(chromium, broken, tmp_path / "work")
    found = problems(result)
    print("\n".join(found))
    assert len(found) == 4, found
    assert found[0].startswith("script error: Uncaught Error: boom i head"), found
    assert found[1] == "console error: synlig i konsolen", found
    assert found[2] == "image 2 (trasig) does not decode (naturalWidth 0 after load)", found
    assert found[3] == "link #ingenstans (trasig) has no element with that id", found
    assert [link["lands"] for link in result["links"]] == [True, True, True, False]


def test_the_browser_check_finds_nothing_on_a_clean_page(chromium, tmp_path):
    clean = write_page(tmp_path, "clean.html", clean_body())
    result = browser_check(chromium, clean, tmp_path / "work")
    assert problems(result) == []
    assert result["title"] == "Prov: 2"  # the page's own script ran
    assert result["charset"] == "UTF-8"
    assert [img["natural_width"] for img in result["images"]] == [4, 4]
    assert [link["href"] for link in result["toc"]] == ["#första", "#andra"]
    assert [link["lands"] for link in result["links"]] == [True, True, True]


# --- the pipeline's report ------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_check(chromium, run_dir, tmp_path_factory) -> dict[str, Any]:
    """What Chromium found on the shared run's report.html (one browser call for all tests)."""
    report = run_dir / "outputs" / "report.html"
    return browser_check(chromium, report, tmp_path_factory.mktemp("report_browser"))


def test_the_report_opens_in_a_browser_with_no_script_or_console_error(report_check):
    assert report_check["errors"] == []
    assert report_check["console_errors"] == []
    assert report_check["charset"] == "UTF-8"  # Swedish letters read as written
    assert report_check["title"]


def test_every_image_of_the_report_decodes_in_the_browser(report_check):
    assert report_check["images"], "the report shows no image"
    broken = [p for p in problems(report_check) if p.startswith("image ")]
    assert broken == []


def test_every_in_page_link_of_the_report_lands_on_an_element(report_check):
    broken = [p for p in problems(report_check) if p.startswith("link ")]
    assert broken == []


def test_the_report_has_a_table_of_contents_whose_links_land(report_check):
    toc = report_check["toc"]
    assert toc is not None, "the report has no <nav id='toc'>"
    assert len(toc) >= 5, toc
    assert [link for link in toc if not link["lands"]] == []


def test_a_screenshot_of_the_first_page_of_the_report_is_kept(chromium, run_dir, tmp_path):
    shot = tmp_path / "report_first_page.png"
    pixels = screenshot(chromium, run_dir / "outputs" / "report.html", shot)
    print(f"screenshot of the report's first page: {shot}")
    assert pixels.shape[:2] == (WINDOW[1], WINDOW[0])
    assert pixels.std() > 0.01, "the first page is blank"
