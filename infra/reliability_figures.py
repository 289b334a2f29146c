"""Writes the figures of a `make soak` run (the JSON files the reliability tests leave in
RELIABILITY_FIGURES_DIR) into RELIABILITY.md, between the soak-figures markers.

usage: reliability_figures.py FIGURES_DIR RELIABILITY.md SECONDS
"""
import json
import os
import platform
import subprocess
import sys
from datetime import datetime, timezone

START, END = "<!-- soak-figures:start -->", "<!-- soak-figures:end -->"


def load(directory, name):
    path = os.path.join(directory, f"{name}.json")
    if not os.path.exists(path):
        sys.exit(f"error: {path} is missing: did the {name} test run?")
    with open(path) as f:
        return json.load(f)


def cpu():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def git(*args):
    try:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def table(rows):
    out = ["| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(out)


def render(d, seconds):
    model, fuzz, faults = load(d, "model"), load(d, "fuzz"), load(d, "faults")
    dirty = " (modified)" if git("status", "--porcelain", "--untracked-files=no") else ""
    lines = [
        f"From `make soak` on {datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')}, commit "
        f"{git('rev-parse', '--short', 'HEAD')}{dirty}, on {cpu()} ({os.cpu_count()} cores), "
        f"DynamoDB Local 3.3.0 and LocalStack 4.13.1; {seconds} s in all. "
        "Violations found: **"
        f"{model['violations'] + fuzz['violations'] + faults['violations']}**.",
        "",
        "**Random concurrency, model-checked** (`reliability_model`)",
        "",
        table([
            ("seed", f"`{model['seed']}`"),
            ("clients x operations x phases", f"{model['clients']} x {model['opsPerClientPerPhase']} x {model['phases']}"),
            ("operations run", model["operations"]),
            ("by operation", ", ".join(f"{k} {v}" for k, v in model["byOperation"].items())),
            ("reservations made", model["reservations"]),
            ("outbox records checked", model["outboxRecords"]),
            ("checkpoints (invariants + model)", model["checkpoints"]),
            ("violations", model["violations"]),
            ("seconds", model["seconds"]),
        ]),
        "",
        "<details><summary>outcomes</summary>",
        "",
        table([(k, v) for k, v in model["outcomes"].items()]),
        "",
        "</details>",
        "",
        "**Faults** (`reliability_faults`)",
        "",
        table([
            ("seed", f"`{faults['seed']}`"),
            ("faults injected", f"{faults['faultsInjected']} ("
             + "; ".join(f"{o['service']}: {o['fault']}, down {o['downSeconds']:.1f} s" for o in faults["outages"]) + ")"),
            ("HTTP requests under load", faults["requests"]),
            ("answers by phase", "; ".join(
                f"{phase}: " + ", ".join(f"{s} x{n}" for s, n in st.items()) for phase, st in faults["statusesByPhase"].items())),
            ("slowest answer", f"{faults['slowestAnswerMs']} ms (deadline 10 s)"),
            ("503s retried afterwards", ", ".join(f"{s} x{n}" for s, n in faults["retriedAfterOutage"].items()) or "none"),
            ("changes (outbox records)", faults["outboxRecords"]),
            ("events received by the subscriber", f"{faults['eventsReceived']} ({faults['duplicateDeliveries']} duplicates)"),
            ("changes never published", faults["missingEvents"]),
            ("acknowledged holds DynamoDB Local dropped at a SIGKILL (see above)", faults.get("holdsLostByDynamoDbLocal", 0)),
            ("violations", faults["violations"]),
        ]),
        "",
        "**Hostile input** (`reliability_fuzz`)",
        "",
        table([
            ("seed", f"`{fuzz['seed']}`"),
            ("inputs tried", fuzz["cases"]),
            ("routes", ", ".join(f"`{k}` {v}" for k, v in fuzz["routes"].items())),
            ("mutations", ", ".join(f"{k} {v}" for k, v in fuzz["mutations"].items())),
            ("answers", ", ".join(f"{s} x{n}" for s, n in fuzz["statuses"].items())),
            ("refused by the HTTP parser (400, no body)", fuzz["rejectedByHttpLayer"]),
            ("5xx, hangs, leaks, state changed by a rejected request", fuzz["violations"]),
        ]),
    ]
    return "\n".join(lines)


def main():
    directory, path, seconds = sys.argv[1], sys.argv[2], sys.argv[3]
    with open(path) as f:
        doc = f.read()
    if START not in doc or END not in doc:
        sys.exit(f"error: {path} has no {START} ... {END} block")
    head, rest = doc.split(START, 1)
    _, tail = rest.split(END, 1)
    figures = render(directory, seconds)  # before the file is rewritten: it checks the tree is clean
    with open(path, "w") as f:
        f.write(f"{head}{START}\n{figures}\n{END}{tail}")
    print(f"figures written to {path}")


if __name__ == "__main__":
    main()
