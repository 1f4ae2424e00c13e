"""The README and CONTRIBUTING.md link only to files that exist (mkdocs checks the docs/ pages
themselves, in CI), and the README stays a short tour."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINK = re.compile(r"\]\(([^)\s]+)\)")


def _local_links(text: str) -> list[str]:
    return [t for t in LINK.findall(text) if "://" not in t and not t.startswith("#")]


@pytest.mark.parametrize("name", ["README.md", "CONTRIBUTING.md"])
def test_every_relative_link_names_a_file_that_exists(name: str) -> None:
    page = ROOT / name
    links = _local_links(page.read_text())
    assert links, f"{name} links to nothing"
    missing = []
    for link in links:
        path, _, anchor = link.partition("#")
        target = (page.parent / path).resolve()
        if not target.exists():
            missing.append(link)
        elif anchor and target.suffix == ".md":
            slugs = {
                re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-")
                for h in re.findall(r"^#+ (.+)$", target.read_text(), re.M)
            }
            if anchor not in slugs:
                missing.append(link)
    assert not missing, f"{name} links to what does not exist: {missing}"


def test_the_readme_is_a_tour_and_every_docs_page_is_in_the_site() -> None:
    assert len((ROOT / "README.md").read_text().splitlines()) < 200
    nav = (ROOT / "mkdocs.yml").read_text()
    pages = {p.name for p in (ROOT / "docs").glob("*.md")}
    assert pages, "docs/ has no pages"
    assert not [p for p in pages if p not in nav], "a docs page is missing from mkdocs.yml's nav"
