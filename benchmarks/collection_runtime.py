"""Run every notebook with its default parameters through papermill; print the times.

    python benchmarks/collection_runtime.py [--out DIR] [--cells N] [notebooks ...]

Writes go to a scratch data folder ($KDLIB_DATA), never to the repository's data/.
Prints a per-notebook table (wall seconds, including the kernel start) and the total.
``--cells N`` adds a profile: per notebook, the time outside cells (kernel start, papermill)
and its N slowest cells with their first line, from papermill's per-cell durations.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from kdlib.data import REPO_ROOT, scratch_data_dir
from kdlib.runs import execute_notebook


def slowest_cells(nb: dict, n: int) -> list[tuple[float, int, str]]:
    """The ``n`` slowest code cells of a papermill-executed notebook (a parsed .ipynb dict).

    Returns ``(seconds, cell index, first source line)`` tuples, slowest first; cells
    without a recorded duration count as 0 s.
    """
    cells = []
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] != "code":
            continue
        seconds = cell.get("metadata", {}).get("papermill", {}).get("duration") or 0.0
        source = "".join(cell["source"]).strip().splitlines()
        cells.append((float(seconds), i, source[0][:70] if source else ""))
    return sorted(cells, key=lambda c: -c[0])[:n]


def cell_seconds(nb: dict) -> float:
    """Seconds spent inside the code cells of a papermill-executed notebook."""
    return sum(c[0] for c in slowest_cells(nb, len(nb["cells"])))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", help="folder for the executed notebooks (default: a temporary one)")
    ap.add_argument("--cells", type=int, default=0, metavar="N",
                    help="also print each notebook's N slowest cells and its time outside cells")
    ap.add_argument("notebooks", nargs="*", help="notebooks to run (default: all in notebooks/)")
    args = ap.parse_args(argv)
    paths = [Path(p) for p in args.notebooks] or sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]*_*.ipynb"))
    work = Path(tempfile.mkdtemp(prefix="kdlab-runtime-"))
    out = Path(args.out) if args.out else work / "executed"
    out.mkdir(parents=True, exist_ok=True)
    os.environ["KDLIB_DATA"] = str(scratch_data_dir(work / "data"))
    rows, failed = [], False
    for nb in paths:
        t0 = time.perf_counter()
        try:
            execute_notebook(nb, out / nb.name)
            status = "ok"
        except Exception as exc:  # report and go on with the others
            status, failed = f"FAILED: {type(exc).__name__}", True
        rows.append((nb.stem, time.perf_counter() - t0, status))
        print(f"  {nb.stem:20s} {rows[-1][1]:6.1f} s  {status}", file=sys.stderr)
    total = sum(r[1] for r in rows)
    print("| notebook | seconds | status |\n| --- | ---: | --- |")
    for name, sec, status in rows:
        print(f"| {name} | {sec:.1f} | {status} |")
    print(f"| **total** | **{total:.1f}** | |")
    if args.cells > 0:
        for name, sec, _status in rows:
            executed = out / f"{name}.ipynb"
            if not executed.is_file():
                continue
            nb = json.loads(executed.read_text(encoding="utf-8"))
            print(f"\n{name}: {sec:.1f} s, of which {sec - cell_seconds(nb):.1f} s outside cells "
                  "(kernel start, papermill)")
            for seconds, index, first in slowest_cells(nb, args.cells):
                print(f"  {seconds:6.2f} s  cell {index:3d}  {first}")
    print(f"executed notebooks in {out}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
