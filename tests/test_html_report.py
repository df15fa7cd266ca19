"""The HTML report is one self-contained page that a browser opens, every case and erratum in it."""

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from oracle.verdict.cases import discover, load_case
from oracle.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def html_report(tmp_path_factory):
    out = tmp_path_factory.mktemp("html") / "report.html"
    assert main(["report", "--format", "html", "-o", str(out)]) == 0
    return out


def test_the_page_needs_no_network(html_report):
    text = html_report.read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text)
    assert "<style>" in text and text.count("<section") == len(discover([ROOT / "cases"]))


@pytest.mark.skipif(
    not CHROMIUM, reason="Debian's chromium is not installed here (.ci/run installs it with apt-get install chromium)"
)
def test_headless_chromium_shows_every_case_with_its_errata(html_report, tmp_path):
    run = subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", html_report.as_uri()],
        capture_output=True,
        text=True,
        timeout=180,
    )
    dom = run.stdout
    assert "</html>" in dom, run.stderr[-2000:]
    for path in discover([ROOT / "cases"]):
        case = load_case(path)
        assert f'id="{case.id}"' in dom
        for x in case.expect:
            if x.erratum:
                assert " ".join(x.erratum.split())[:40] in dom
    assert dom.count('class="erratum"') > 10
    shot = tmp_path / "page.png"
    subprocess.run(
        [
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={tmp_path / 'profile2'}",
            f"--screenshot={shot}",
            "--window-size=1280,2000",
            html_report.as_uri(),
        ],
        capture_output=True,
        timeout=180,
    )
    assert shot.exists() and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
