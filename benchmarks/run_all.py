"""Run every benchmarks/bench_*.py in turn; print their tables and save them to benchmarks/results/.

Each benchmark measures ratios side by side in one run (ours vs a reference), so figures from
different machines stay comparable. Copy the tables into docs/benchmarks.md when they change.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    only = set(sys.argv[1:])
    out_dir = HERE / "results"
    out_dir.mkdir(exist_ok=True)
    sections = [f"# Benchmark run {dt.datetime.now(dt.UTC).isoformat(timespec='seconds')}\n"]
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        name = script.stem.removeprefix("bench_")
        if only and name not in only:
            continue
        print(f"\n## {name}\n", flush=True)
        # Start-up is measured with the app's own interpreter (no benchmark-only packages installed).
        python = os.environ.get("APP_PYTHON", sys.executable) if name == "startup" else sys.executable
        proc = subprocess.run(
            [python, str(script)],
            cwd=HERE.parent,
            env={**os.environ, "PYTHONPATH": str(HERE.parent)},
            capture_output=True,
            text=True,
        )
        sys.stdout.write(proc.stdout)
        if proc.returncode:
            failed.append(name)
            sys.stderr.write(proc.stderr[-4000:])
        sections.append(f"## {name}\n\n{proc.stdout}\n")
    (out_dir / "latest.md").write_text("\n".join(sections))
    print(f"\nsaved to {out_dir / 'latest.md'}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
