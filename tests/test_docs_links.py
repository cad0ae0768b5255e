"""Every relative link in the repository's Markdown points at a file that exists.

The docs cite each other (validation pages, the architecture, the transforms' notes); a page
renamed or never written leaves a reader at a dead link.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
#: the documentation a reader browses (not what tests or runs write under bundle/ or benchmarks/)
PAGES = sorted([*ROOT.glob("*.md"), *ROOT.glob("docs/**/*.md"), *ROOT.glob("bundle/docs/*.md"),
                *ROOT.glob("monailabel_app/*.md")])


def relative_targets(page: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)  # code blocks hold no links
    return [t for t in LINK.findall(text) if not re.match(r"[a-z][a-z0-9+.-]*:", t) and not t.startswith("#")]


def test_the_repository_has_markdown_pages_with_relative_links():
    assert len(PAGES) >= 10 and sum(len(relative_targets(p)) for p in PAGES) >= 20


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    missing = [t for t in relative_targets(page) if not (page.parent / t.split("#", 1)[0]).exists()]
    assert not missing, f"{page.relative_to(ROOT)}: links to missing files {missing}"
