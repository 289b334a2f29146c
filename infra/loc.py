#!/usr/bin/env python3
"""Lines of code per Rust file: not blank, not only a comment, not inside a `#[cfg(test)]` module.

`python3 infra/loc.py [--max N] DIR...` lists files over N (default 400) and fails if any is;
with `--all` it lists every file, largest first."""
import pathlib
import re
import sys


def loc(path: pathlib.Path) -> int:
    count = 0
    depth = 0  # brace depth inside a test module; 0 = outside
    pending_test = False
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if depth:
            depth += line.count("{") - line.count("}")
            continue
        if line.startswith("#[cfg(test)]"):
            pending_test = True
            continue
        # `mod tests {`, or one other test modules may use (`pub(crate) mod tests {`).
        if pending_test and re.match(r"(pub(\([a-z:]+\))? )?mod ", line) and line.endswith("{"):
            depth = 1
            pending_test = False
            continue
        pending_test = False
        if not line or line.startswith("//"):
            continue
        count += 1
    return count


def main() -> int:
    args = sys.argv[1:]
    limit, show_all = 400, False
    if "--max" in args:
        i = args.index("--max")
        limit = int(args[i + 1])
        del args[i : i + 2]
    if "--all" in args:
        args.remove("--all")
        show_all = True
    files = sorted(
        ((loc(p), p) for d in args for p in pathlib.Path(d).rglob("*.rs")), key=lambda t: -t[0]
    )
    over = [(n, p) for n, p in files if n > limit]
    for n, p in files if show_all else over:
        print(f"{n:5} {p}")
    if over:
        print(f"{len(over)} file(s) over {limit} lines of code", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
