"""The table of bench/run: one row per benchmark, from the BENCH-RESULT line each one printed.

    .venv/bin/python bench/report.py --logs DIR [--update-readme README.md]

With --update-readme, the table replaces what is between the `<!-- bench:start -->` and
`<!-- bench:end -->` markers in the README's Performance section, with the date and machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
from pathlib import Path

ORDER = ("overhead", "loss", "pipeline", "latency", "memory", "ui")
START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def results(logs: Path) -> dict[str, dict]:
    found = {}
    for name in ORDER:
        log = logs / f"{name}.log"
        if not log.exists():
            continue
        for line in log.read_text(errors="replace").splitlines():
            if line.startswith("BENCH-RESULT "):
                found[name] = json.loads(line[len("BENCH-RESULT "):])
        if name not in found:
            found[name] = {"bench": name, "figure": "(no result: see the log)", "value": None,
                           "target": "", "met": False, "summary": ""}
    return found


def table(found: dict[str, dict]) -> str:
    rows = ["| benchmark | figure | measured | target | met | details |", "|---|---|---|---|---|---|"]
    for name in ORDER:
        r = found.get(name)
        if r is None:
            continue
        value = "—" if r["value"] is None else f"{r['value']:g}"
        rows.append(f"| {name} | {r['figure']} | **{value}** | {r['target']} | "
                    f"{'yes' if r['met'] else '**no**'} | {r['summary']} |")
    return "\n".join(rows)


def machine() -> str:
    cpus = os.cpu_count()
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpus} CPUs ({model}), Linux {platform.release()}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--logs", type=Path, required=True)
    ap.add_argument("--update-readme", type=Path)
    args = ap.parse_args()
    found = results(args.logs)
    text = table(found)
    print("\n" + text)
    missed = [n for n, r in found.items() if not r["met"]]
    print(f"\n{len(found) - len(missed)} of {len(found)} targets met" + (f"; not met: {', '.join(missed)}" if missed else ""))
    if args.update_readme:
        readme = args.update_readme.read_text()
        if START not in readme or END not in readme:
            print(f"{args.update_readme}: no {START} ... {END} markers; not updated", file=sys.stderr)
            return 1
        stamp = f"Measured by `bench/run` on {datetime.date.today().isoformat()}, {machine()}."
        block = f"{START}\n{stamp}\n\n{text}\n{END}"
        readme = re.sub(re.escape(START) + ".*?" + re.escape(END), lambda _m: block, readme, flags=re.S)
        args.update_readme.write_text(readme)
        print(f"updated {args.update_readme}")
    return 0 if not missed else 1


if __name__ == "__main__":
    sys.exit(main())
