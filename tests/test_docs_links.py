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


def heading_anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation other than ``-`` and
    ``_`` dropped, spaces as ``-``; a repeated heading gets ``-1``, ``-2``, ..."""
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    anchors: set[str] = set()
    for title in re.findall(r"^#{1,6}\s+(.+?)\s*#*\s*$", text, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", re.sub(r"[`*]", "", title).lower()).replace(" ", "-")
        n, candidate = 0, slug
        while candidate in anchors:
            n += 1
            candidate = f"{slug}-{n}"
        anchors.add(candidate)
    return anchors


def test_heading_anchors_follow_githubs_rule(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# BreastRegion: the breast map (Fig. 2)\n## Install the two worlds, and CI (`.ci/run`)\n"
                    "## Notes\n## Notes\n```\n# not a heading\n```\n", encoding="utf-8")
    assert heading_anchors(page) == {"breastregion-the-breast-map-fig-2", "install-the-two-worlds-and-ci-cirun",
                                     "notes", "notes-1"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_link_anchors_name_a_heading(page):
    text = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for target in LINK.findall(text):
        path, _, anchor = target.partition("#")
        if not anchor or re.match(r"[a-z][a-z0-9+.-]*:", target) or not path.endswith((".md", "")):
            continue
        dest = page if not path else page.parent / path
        if dest.suffix == ".md" and dest.exists() and anchor not in heading_anchors(dest):
            broken.append(target)
    assert not broken, f"{page.relative_to(ROOT)}: links to headings that do not exist {broken}"
