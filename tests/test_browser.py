"""The built book as a reader sees it: headless Chromium through Selenium, every host but localhost unreachable.

Every page loads without console errors, shows its images and typesets its math with MathJax served by the book
itself; every internal link and citation resolves; the search page finds a chapter's word; the scoreboard shows
every claim of ``papers/*.yaml``. A few screenshots are kept under ``book/_build/screenshots/``.
"""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
import urllib.parse
from pathlib import Path

import pytest
from companion import papers, paths

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="browser tests skipped: headless Chromium is not installed "
        "(apt-get install chromium chromium-driver; .ci/run installs them)",
    ),
]

# Chromium's own background requests (component updates, safe browsing, ...) are switched off, and every host
# name but the local server's resolves to nothing: a page that needs the network shows it here.
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1000",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
]

# MathJax is loaded with `defer` and typesets asynchronously: wait (up to 30 s, polling) for it to start, then for
# its typesetting promise. On a busy machine the script can start after the page's load event.
WAIT_FOR_MATHJAX = """
const done = arguments[arguments.length - 1];
const start = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => done('typeset')).catch(e => done('error: ' + e));
  } else if (Date.now() - start > 30000) {
    done('no mathjax');
  } else {
    setTimeout(poll, 100);
  }
})();
"""

PAGE_REPORT = """
const math = [...document.querySelectorAll('.math')];
return {
  broken_images: [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src),
  math: math.length,
  untypeset: math.filter(m => !m.querySelector('mjx-container')).map(m => m.textContent.slice(0, 60)),
  remote: performance.getEntriesByType('resource').map(r => r.name)
          .filter(u => !u.startsWith(location.origin)),
};
"""


def _pages(html: Path) -> list[str]:
    return sorted(
        str(p.relative_to(html)) for p in html.rglob("*.html") if not p.relative_to(html).parts[0].startswith("_")
    )


@pytest.fixture(scope="module")
def site(built_book):
    """The built book served over HTTP on localhost: (base URL, html folder)."""
    out, html = built_book
    assert out.returncode == 0, (out.stdout + out.stderr)[-4000:]

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(html)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", html
    server.shutdown()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS + [f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(90)
    yield driver
    driver.quit()


def _open(browser, url: str) -> dict:
    browser.get(url)
    mathjax = browser.execute_async_script(WAIT_FOR_MATHJAX)
    report = browser.execute_script(PAGE_REPORT)
    report["mathjax"] = mathjax
    report["errors"] = [
        e["message"] for e in browser.get_log("browser") if e["level"] == "SEVERE" and "favicon.ico" not in e["message"]
    ]
    return report


def test_every_page_loads_cleanly_with_its_images_and_math(site, browser):
    base, html = site
    problems = []
    for page in _pages(html):
        r = _open(browser, base + page)
        if r["errors"]:
            problems.append(f"{page}: console errors {r['errors'][:3]}")
        if r["broken_images"]:
            problems.append(f"{page}: images without pixels {r['broken_images'][:3]}")
        if r["remote"]:
            problems.append(f"{page}: requests outside the book {r['remote'][:3]}")
        if r["math"] and (r["mathjax"] != "typeset" or r["untypeset"]):
            problems.append(f"{page}: math not typeset ({r['mathjax']}): {r['untypeset'][:3]}")
    assert not problems, "\n".join(problems)


def test_math_is_typeset_on_a_chapter_page(site, browser):
    base, _ = site
    r = _open(browser, base + "sfw/index.html")
    assert r["mathjax"] == "typeset" and r["math"] > 5 and not r["untypeset"]
    text = browser.find_element("tag name", "main").text
    assert "\\(" not in text and "\\[" not in text


def test_every_internal_link_and_citation_resolves(site):
    from bs4 import BeautifulSoup

    _, html = site
    ids: dict[Path, set[str]] = {}

    def anchors(path: Path) -> set[str]:
        if path not in ids:
            soup = BeautifulSoup(path.read_text(errors="replace"), "html.parser")
            ids[path] = {t["id"] for t in soup.find_all(id=True)} | {
                t["name"] for t in soup.find_all("a", attrs={"name": True})
            }
        return ids[path]

    broken, citations = [], 0
    for page in _pages(html):
        path = html / page
        soup = BeautifulSoup(path.read_text(errors="replace"), "html.parser")
        for a in soup.find_all("a", href=True):
            href = a["href"]
            parsed = urllib.parse.urlparse(href)
            if parsed.scheme or href.startswith(("mailto:", "javascript:")):
                continue
            target = (path.parent / urllib.parse.unquote(parsed.path)).resolve() if parsed.path else path
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page}: {href} (no such file)")
            elif parsed.fragment and target.suffix == ".html" and parsed.fragment not in anchors(target):
                broken.append(f"{page}: {href} (no such anchor)")
            if target.name == "references.html" and parsed.fragment:
                citations += 1
    assert not broken, "\n".join(broken[:20])
    assert citations >= len(papers.slugs()), "the chapters cite their papers"


def test_search_finds_a_word_from_a_chapter(site, browser):
    from selenium.webdriver.support.ui import WebDriverWait

    base, _ = site
    browser.get(base + "search.html?q=Braess")
    links = WebDriverWait(browser, 30).until(
        lambda d: d.find_elements("css selector", "#search-results ul.search li a")
    )
    assert any("flows-over-time" in link.get_attribute("href") for link in links)


def test_scoreboard_shows_every_claim_and_screenshots_are_kept(site, browser):
    base, _ = site
    shots = paths.book_dir() / "_build" / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    r = _open(browser, base + "scoreboard.html")
    assert not r["errors"]
    text = browser.find_element("tag name", "main").text
    missing = [f"{slug}:{c.id}" for slug in papers.slugs() for c in papers.load(slug).claims if c.id not in text]
    assert not missing, f"claims missing from the scoreboard: {missing}"
    browser.save_screenshot(str(shots / "scoreboard.png"))
    for page in ("intro.html", "sfw/index.html", "flows-over-time/01-nash-flows.html"):
        _open(browser, base + page)
        assert browser.save_screenshot(str(shots / (page.replace("/", "-").replace(".html", ".png"))))
