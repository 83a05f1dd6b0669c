"""P8 start-up: loading the code location's definitions next to a bare `import dagster`, and the webhook app's cold
start, each in fresh interpreters (every run and every UI reload pays the first).

    .venv/bin/python -m bench.startup [--repeat 7]
"""

import argparse
import subprocess
import sys
import time

from bench.common import REPO, median

PROGRAMS = {
    "import dagster": "import dagster",
    "load definitions": "from ingest_platform.definitions import defs; defs.get_repository_def()",
    "import flask": "import flask",
    "webhook app cold start": "from webhook_app import create_app; create_app()",
}


def cold_start(code: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    seconds = {name: [] for name in PROGRAMS}
    for _ in range(args.repeat):
        for name, code in PROGRAMS.items():
            seconds[name].append(cold_start(code))
    figures = {name: median(values) for name, values in seconds.items()}
    print(f"P8 start-up, fresh interpreter, median of {args.repeat}")
    for name, value in figures.items():
        print(f"  {name:24s} {value * 1000:7.0f} ms")
    print(
        f"  definitions / import dagster: {figures['load definitions'] / figures['import dagster']:.2f}x (goal <= 1.5x)"
    )
    print(f"  webhook app / import flask:   {figures['webhook app cold start'] / figures['import flask']:.2f}x")


if __name__ == "__main__":
    main()
