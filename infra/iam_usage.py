"""Least privilege, both ways: what each function was granted (template.yaml) against what it used
in a full `make test` (the IAM gate records every grant a call was allowed by, IAM_USAGE_FILE).

A grant no call used is a permission the function does not need: it fails `make test`, naming the
function, the action and the resource. (A call no grant allows fails the test that made it, with
the gate's AccessDenied naming the function and the action.) The result, per function, is written
to PERMISSIONS.md; a PERMISSIONS.md that differs from what this run wrote is stale and fails too
(commit the new one).

Usage: .local/template/bin/python infra/iam_usage.py USAGE_FILE [--write] [--partial]
       (--write: write PERMISSIONS.md whatever it held, for a change of the template;
        --partial: some tests failed, so only denied calls are judged: a run cut short leaves
        grants unused that a whole run uses)
"""
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "PERMISSIONS.md"


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    topology = json.loads((ROOT / ".local" / "topology.json").read_text())
    used, denied, problems = set(), {}, []
    usage = pathlib.Path(argv[0])
    if usage.exists():
        for line in usage.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                if entry.get("denied"):
                    # Each test has its own table: one line per function and action.
                    denied.setdefault((entry["function"], entry["action"]), []).append(entry["resource"])
                else:
                    used.add((entry["function"], entry["action"], entry["resource"]))
    for (function, action), resources in sorted(denied.items()):
        problems.append(
            f"{function}: {len(resources)} call(s) of {action} denied (AccessDenied), e.g. on {resources[0]}: "
            "template.yaml does not grant it"
        )

    lines = [
        "# Permissions: what each function is granted, and uses",
        "",
        "Written by `make test` (`infra/iam_usage.py`) from template.yaml and the IAM gate's record of",
        "every call the functions made in the tests: each grant below was used by at least one call",
        "(a grant no call uses fails `make test`; so does a call no grant allows). Do not edit by hand.",
        "",
        "| function | action | resource |",
        "|---|---|---|",
    ]
    for function, spec in sorted(topology["functions"].items()):
        for statement in spec["statements"]:
            if statement["effect"] != "Allow":
                continue
            for action in statement["actions"]:
                for resource in statement["resources"]:
                    if (function, action, resource) not in used:
                        problems.append(f"{function}: grants {action} on {resource}, which no call in the tests used")
                    lines.append(f"| {function} | `{action}` | `{resource}` |")
    text = "\n".join(lines) + "\n"

    if "--partial" in argv:
        for p in problems[: len(denied)]:
            print(f"least privilege: {p}")
        print("least privilege: unused grants not judged (tests failed: the run was not whole)")
        return 1 if denied else 0
    if problems:
        for p in problems:
            print(f"least privilege: {p}")
        print("grant what was denied; remove a grant no call uses (or add the test that exercises it)")
        return 1
    stale = not OUT.exists() or OUT.read_text() != text
    OUT.write_text(text)
    granted = sum(1 for line in lines if line.startswith("| ") and not line.startswith("| function"))
    if stale and "--write" not in argv:
        print("PERMISSIONS.md was stale and has been rewritten: commit it")
        return 1
    print(f"least privilege: {granted} grants of {len(topology['functions'])} functions, every one used; PERMISSIONS.md current")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
