"""Helpers for the HTML report tests: the real browser (Debian's headless chromium), the data a
page carries (JSON block, data-* attributes), and the self-containment check."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def qa_data(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="qa-data">(.*?)</script>', html, re.S)
    assert m, "the machine-readable qa-data block is missing"
    return json.loads(m.group(1))


class _Cells(HTMLParser):
    """Every element carrying data-* attributes, as a dict of its attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.items: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if any(k.startswith("data-") for k in a):
            self.items.append({"tag": tag, **a})


def data_elements(html: str) -> list[dict[str, str]]:
    p = _Cells()
    p.feed(html)
    return p.items


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    if not Path(CHROMIUM).is_file() and not shutil.which("chromium"):
        pytest.fail(f"chromium not found at {CHROMIUM}: install it with `apt-get update && apt-get install -y "
                    "chromium` (.ci/run installs it on CI); the QA report must be checked in a real browser")
    exe = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             "--disable-dev-shm-usage", f"--user-data-dir={profile}"]
    return subprocess.run([exe, *flags, *args], capture_output=True, text=True, timeout=120)


def assert_self_contained(html: str) -> None:
    refs = re.findall(r"""\b(?:src|href|xlink:href|action|srcset|poster|data)\s*=\s*["']?\s*([^"'\s>]*)""", html, re.I)
    remote = [r for r in refs if re.match(r"(?i)(https?:|//|ftp:)", r)]
    assert not remote, f"external references: {remote[:5]}"
    assert not re.search(r"(?i)<script[^>]*\bsrc\s*=", html), "a <script src> is present"
    assert not re.search(r"(?i)<link\b", html), "a <link> element (stylesheet, font) is present"
    assert not re.search(r"(?i)@import|@font-face|url\(\s*['\"]?(https?:|//)", html), "CSS loads something"
    # One executable script (filter, sort, search), inline; the CSP lets only that exact text run
    # (its SHA-256 is listed; no 'unsafe-inline'), and blocks every request (default-src 'none').
    blocks = re.findall(r"(?is)<script\b([^>]*)>(.*?)</script>", html)
    runnable = [body for attrs, body in blocks if 'type="application/json"' not in attrs]
    assert len(runnable) == 1, f"{len(runnable)} executable scripts"
    csp = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]+)"', html).group(1)
    digest = base64.b64encode(hashlib.sha256(runnable[0].encode("utf-8")).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in csp.replace("&#39;", "'"), csp
    assert "default-src 'none'" in csp.replace("&#39;", "'") and "unsafe-inline'; base" not in csp
    assert not re.search(r"(?i)\b(fetch|XMLHttpRequest|WebSocket|import\()", runnable[0])
    assert "http://" not in html and "https://" not in html


def _sha(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode() + "'"


def with_test_scripts(html: str, *scripts: str) -> str:
    """The page with extra scripts run after its own (a test's clicks, the accessibility checker),
    allowed by adding their hashes to the page's CSP; nothing else of the policy changes."""
    m = re.search(r'(<meta http-equiv="Content-Security-Policy" content=")([^"]+)(")', html)
    assert m, "no CSP"
    policy = m.group(2).replace("script-src ", "script-src " + " ".join(_sha(s) for s in scripts) + " ")
    html = html[:m.start(2)] + policy + html[m.end(2):]
    return html.replace("</body>", "".join(f"<script>{s}</script>" for s in scripts) + "</body>")


AXE_PATHS = (Path(__file__).resolve().parent.parent / ".ci" / "node" / "node_modules" / "axe-core" / "axe.min.js",)


def axe_source() -> str:
    """axe-core (the npm package, installed by .ci/run): fail, never skip, without it."""
    for p in AXE_PATHS:
        if p.is_file():
            return p.read_text(encoding="utf-8")
    pytest.fail("axe-core not found: run `npm install --prefix .ci/node --no-save axe-core@4` "
                "(.ci/run does it); the report's accessibility is checked with it")


class _Rows(HTMLParser):
    """The rows of the filterable tables: their data-* attributes and whether they are hidden."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[dict[str, str]] = []
        self._depth: list[bool] = []  # per open table: filterable?

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: (v or "") for k, v in attrs}
        if tag == "table":
            self._depth.append("filterable" in a.get("class", "").split())
        elif tag == "tr" and self._depth and self._depth[-1] and any(k.startswith("data-") for k in a):
            self.rows.append({**a, "hidden": "hidden" in a})

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth.pop()


def filterable_rows(html: str) -> list[dict]:
    p = _Rows()
    p.feed(html)
    return p.rows
