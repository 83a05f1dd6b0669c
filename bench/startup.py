"""P8 start-up: loading the code location's definitions next to a bare `import dagster`, and the webhook app's cold
start, each in fresh interpreters (every run and every UI reload pays the first). Besides the wall time it prints the
CPU time each interpreter used, which a busy shared machine moves far less.

    .venv/bin/python -m bench.startup [--repeat 7]
"""

import argparse
import resource
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


def cold_start(code: str) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of a fresh interpreter running `code`."""
    cpu_before = _children_cpu()
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    return time.perf_counter() - started, _children_cpu() - cpu_before


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    seconds = {name: [] for name in PROGRAMS}
    cpu_seconds = {name: [] for name in PROGRAMS}
    for _ in range(args.repeat):
        for name, code in PROGRAMS.items():
            wall, cpu = cold_start(code)
            seconds[name].append(wall)
            cpu_seconds[name].append(cpu)
    figures = {name: median(values) for name, values in seconds.items()}
    cpu = {name: median(values) for name, values in cpu_seconds.items()}
    print(f"P8 start-up, fresh interpreter, median of {args.repeat}")
    for name, value in figures.items():
        print(f"  {name:24s} {value * 1000:7.0f} ms wall {cpu[name] * 1000:7.0f} ms CPU")
    print(
        f"  definitions / import dagster: {figures['load definitions'] / figures['import dagster']:.2f}x (goal <= 1.5x)"
    )
    print(
        f"  webhook app / import flask:   {figures['webhook app cold start'] / figures['import flask']:.2f}x wall, "
        f"{cpu['webhook app cold start'] / cpu['import flask']:.2f}x CPU (goal <= 1.5x)"
    )


if __name__ == "__main__":
    main()
