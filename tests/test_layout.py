"""The house's structure: one wing per source, the root shared, and no import circles."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "ingest_platform"
SOURCES = ("app", "bigtop", "rtarf", "vivenu")
DAGSTER_LAYERS = ("assets", "resources", "sensors", "schedules", "jobs")
# What every source shares; anything source-specific belongs in its wing.
ROOT_MODULES = {
    "__init__",
    "definitions",
    "http_retry",
    "landing",
    # the archive's compaction and retention: the landing zone's upkeep, every stream's
    "landing_retention",
    "loading",
    # docker/'s two code locations (core, browser) cut from the one `defs`; they span every source.
    "locations",
    "partitions",
    "settings",
    "tags",
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every ingest_platform module `path` imports, at the top or inside a function or a TYPE_CHECKING block."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.startswith("ingest_platform")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py") if "migrations" not in path.parts}
    return {
        name: {target for target in _imports(path) if target in modules and target != name}
        for name, path in modules.items()
    }


def test_the_root_holds_only_what_every_source_shares() -> None:
    root_modules = {path.stem for path in PACKAGE.glob("*.py")}
    assert root_modules == ROOT_MODULES


# Modules of the Dagster layers named for what they wrap rather than for a source: the resources ARCHITECTURE.md names.
SHARED_LAYER_MODULES = {"browser", "elasticsearch", "landing", "warehouse"}


@pytest.mark.parametrize("source", SOURCES)
def test_each_source_has_a_wing(source: str) -> None:
    assert (PACKAGE / source / "__init__.py").is_file()


@pytest.mark.parametrize("layer", DAGSTER_LAYERS)
def test_the_dagster_layers_have_one_module_per_source(layer: str) -> None:
    layer_modules = {path.stem for path in (PACKAGE / layer).glob("*.py")} - {"__init__"}
    assert layer_modules <= {*SOURCES, *SHARED_LAYER_MODULES}


@pytest.mark.parametrize("source", SOURCES)
def test_a_wing_does_not_reach_into_the_dagster_layers(source: str) -> None:
    graph = _graph()
    upward = {
        (module, target)
        for module, targets in graph.items()
        if module.startswith(f"ingest_platform.{source}")
        for target in targets
        if target.split(".")[1] in ("assets", "sensors", "schedules", "jobs", "definitions")
    }
    assert upward == set()


def test_no_import_circles() -> None:
    graph = _graph()
    visiting: list[str] = []
    done: set[str] = set()
    circles: list[list[str]] = []

    def visit(module: str) -> None:
        if module in done:
            return
        if module in visiting:
            circles.append([*visiting[visiting.index(module) :], module])
            return
        visiting.append(module)
        for target in sorted(graph[module]):
            # A package's __init__ re-exporting its own modules is not a circle.
            if not target.startswith(module + "."):
                visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)
    assert circles == []
