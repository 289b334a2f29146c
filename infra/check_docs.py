"""The docs hold together: README.md stays the entry point (under 300 lines), and every relative
link in README.md, docs/*.md and the top-level *.md files resolves: the file exists, and a
`#anchor` names a heading of it (GitHub's slugs: lower case, punctuation dropped, spaces to
hyphens, `-1`, `-2` for repeats).

Usage: python3 infra/check_docs.py   (run by `make lint`)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README_MAX_LINES = 300
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^\s*(```|~~~)")
CODE_SPAN = re.compile(r"`[^`]*`")


def slug(title):
    """GitHub's anchor of a heading: a link in it counts by its text; lower case; every character
    but letters, digits, `_`, `-` and spaces dropped; spaces to hyphens."""
    title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", title)
    return re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")


def headings(path):
    slugs, seen, fenced = set(), {}, False
    for line in path.read_text().splitlines():
        if FENCE.match(line):
            fenced = not fenced
        if fenced or not re.match(r"#{1,6}\s", line):
            continue
        anchor = slug(line.lstrip("#").strip())
        n = seen.get(anchor, 0)
        seen[anchor] = n + 1
        slugs.add(anchor if n == 0 else f"{anchor}-{n}")
    return slugs


def links(path):
    fenced = False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
        if fenced:
            continue
        for target in LINK.findall(CODE_SPAN.sub("", line)):
            yield number, target


def main():
    problems = []
    readme = ROOT / "README.md"
    count = len(readme.read_text().splitlines())
    if count >= README_MAX_LINES:
        problems.append(f"README.md has {count} lines: keep it under {README_MAX_LINES} (move detail to docs/)")
    pages = [readme, *sorted((ROOT / "docs").glob("*.md")), *sorted(p for p in ROOT.glob("*.md") if p != readme)]
    for page in pages:
        for number, target in links(page):
            if re.match(r"^[a-z]+:", target):
                continue  # http:, https:, mailto:
            file, _, anchor = target.partition("#")
            linked = (page.parent / file).resolve() if file else page
            where = f"{page.relative_to(ROOT)}:{number}: {target}"
            if not linked.exists():
                problems.append(f"{where}: no such file")
            elif anchor and linked.suffix == ".md" and anchor not in headings(linked):
                problems.append(f"{where}: no heading #{anchor} in {linked.relative_to(ROOT)}")
    for problem in problems:
        print(problem)
    print(f"check_docs: {len(pages)} pages, README.md {count} lines, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
