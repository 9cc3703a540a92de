"""Every relative link of the README and of docs/*.md leads to a file of the repository, and to a heading of it
when it names one (``page.md#heading``, as GitHub makes a heading's anchor)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from smartcity.settings import PROJECT_ROOT

PAGES = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)  # links inside code are not links
EXTERNAL = re.compile(r"^[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # https:, mailto:, ...


def links(page: Path) -> list[str]:
    return LINK.findall(CODE.sub("", page.read_text()))


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives the page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"(?m)^#{1,6}\s+(.+?)\s*$", CODE.sub("", page.read_text()))
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def broken_links(page: Path, root: Path = PROJECT_ROOT) -> list[str]:
    """The page's relative links whose file is not in ``root``, or whose anchor is no heading of its page."""
    broken = []
    for link in links(page):
        if EXTERNAL.match(link):
            continue
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve() if path else page
        if not target.exists() or not target.is_relative_to(root):
            broken.append(f"{link}: no such file in the repository")
        elif anchor and target.suffix == ".md" and anchor not in anchors(target):
            broken.append(f"{link}: no heading #{anchor} in {target.relative_to(root)}")
    return broken


def test_the_readme_and_the_docs_index_link_every_page_of_docs():
    linked = {(PROJECT_ROOT / "docs" / link.split("#")[0]).resolve()
              for link in links(PROJECT_ROOT / "docs" / "README.md")}
    assert set(PAGES[1:]) - {PROJECT_ROOT / "docs" / "README.md"} <= linked
    assert "docs/README.md" in links(PROJECT_ROOT / "README.md")


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(PROJECT_ROOT)))
def test_every_relative_link_resolves(page: Path):
    assert broken_links(page) == []


def test_a_broken_link_or_anchor_is_found(tmp_path: Path):
    root = tmp_path / "repo"
    root.mkdir()
    (root / "other.md").write_text("# Other page\n\n## Its part\n")
    (tmp_path / "outside.md").write_text("# Outside\n")
    page = root / "page.md"
    page.write_text("[ok](other.md#its-part) [gone](missing.md) [anchor](other.md#nowhere) [web](https://x.org)\n"
                    "`[code](missing-too.md)` [self](#top) [out](../outside.md)\n\n# Top\n")
    assert broken_links(page, root) == [
        "missing.md: no such file in the repository",
        "other.md#nowhere: no heading #nowhere in other.md",
        "../outside.md: no such file in the repository",
    ]


def test_the_readme_stays_short():
    assert len((PROJECT_ROOT / "README.md").read_text().splitlines()) < 250
