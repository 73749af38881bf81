"""Compare every number the stored notebooks print with those of an earlier commit.

    python benchmarks/printed_numbers.py [--rev REV] [notebooks ...]

For each notebook, the text outputs (stream and text/plain) of every code cell are
reduced to their numbers, timings removed ("12.3 s", "0.4 ms", tqdm bars, "it/s");
the lists at REV (default HEAD) and in the working tree are compared cell by cell,
matching cells by their position among the cells that print numbers. Prints one line
per notebook ("same" or the first differences) and exits 1 if any differs. Used to
check that a refactoring kept every result (re-run with ``make notebooks`` first).
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TIMING = re.compile(r"\d+(\.\d+)?\s?(s|ms|µs|us|min|seconds|it/s|s/it)\b|\d+%\|[^\n]*|"
                    r"\[\d\d:\d\d[^\]]*\]")
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def printed_numbers(nb: dict) -> list[list[str]]:
    """Per code cell that prints numbers: the list of numbers it prints (timings removed)."""
    cells = []
    for c in nb["cells"]:
        if c["cell_type"] != "code":
            continue
        text = []
        for o in c.get("outputs", []):
            if o.get("output_type") == "stream" and o.get("name") == "stdout":
                text.append("".join(o["text"]))
            elif "text/plain" in o.get("data", {}) and "image/png" not in o.get("data", {}):
                text.append("".join(o["data"]["text/plain"]))
        numbers = NUMBER.findall(TIMING.sub(" ", "\n".join(text)))
        if numbers:
            cells.append(numbers)
    return cells


def at_rev(path: Path, rev: str) -> dict | None:
    rel = path.resolve().relative_to(REPO)
    try:
        raw = subprocess.run(["git", "show", f"{rev}:{rel}"], cwd=REPO, check=True,
                             capture_output=True, text=True).stdout
    except subprocess.CalledProcessError:
        return None
    return json.loads(raw)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rev", default="HEAD", help="the commit to compare with (default HEAD)")
    ap.add_argument("notebooks", nargs="*", help="default: every notebooks/NN_*.ipynb")
    args = ap.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or sorted((REPO / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    differ = False
    for path in paths:
        old_nb = at_rev(path, args.rev)
        if old_nb is None:
            print(f"{path.name}: new (not in {args.rev})")
            continue
        old, new = printed_numbers(old_nb), printed_numbers(json.loads(path.read_text()))
        diffs = [(i, a, b) for i, (a, b) in enumerate(zip(old, new)) if a != b]
        if len(old) != len(new):
            diffs.append((min(len(old), len(new)), f"{len(old)} cells", f"{len(new)} cells"))
        total = sum(len(c) for c in new)
        if diffs:
            differ = True
            print(f"{path.name}: {len(diffs)} of {len(new)} number-printing cells differ")
            for i, a, b in diffs[:5]:
                print(f"    cell #{i}: {a if isinstance(a, str) else a[:12]} -> "
                      f"{b if isinstance(b, str) else b[:12]}")
        else:
            print(f"{path.name}: same ({len(new)} cells, {total} numbers)")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
