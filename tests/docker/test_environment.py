"""Every environment variable the code reads reaches the docker/ service that reads it.

The names are found in the code itself (an AST walk over `os.environ[...]`, `os.environ.get`, `os.getenv` and
`dg.EnvVar`, following module constants, tuples of them and the loops over them) and in the definitions' resources
(the variables their fields name), so a new setting that docker/ does not pass fails here instead of in production.
"""

import ast
import re
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
LAUNCHER = yaml.safe_load((DOCKER / "dagster.run-launcher.yaml").read_text())["run_launcher"]["config"]
ENV_NAME = re.compile(r"^[A-Z][A-Z0-9_]*$")

# Modules that read variables named elsewhere, with what docker/ must pass for them.
PATTERNS = {
    # `read_variables` reads the variables the resources' fields name: `resource_reads()` collects those.
    "ingest_platform/settings.py": set(),
}
# Read with a default that is right in docker/, so docker/ need not pass them.
DEFAULTS_SUIT_DOCKER = {
    "WEBHOOK_BIND": "the webhook service's command binds 0.0.0.0:8080",
    "WEBHOOK_WORKERS": "gunicorn.conf.py's 2 workers",
    "WEBHOOK_THREADS": "gunicorn.conf.py's 4 threads",
    "WEBHOOK_CONTROL_SOCKET": "one per bind address by default",
    "PROMETHEUS_MULTIPROC_DIR": "gunicorn.conf.py makes a fresh private folder when unset",
    "VIVENU_EVENT_LIST": "<data dir>/vivenu/events.txt on the shared volume",
    "VIVENU_BASE_URL": "Vivenu's production API",
    "VIVENU_DEV_BASE_URL": "Vivenu's dev API",
}


class EnvironmentReads(ast.NodeVisitor):
    """The environment names one module reads, with constants resolved through `constants`."""

    def __init__(self, constants: dict[str, set[str]]) -> None:
        self.constants = constants
        self.loops: list[dict[str, set[str]]] = []
        self.names: set[str] = set()
        self.unresolved: list[str] = []

    def values(self, node: ast.AST) -> set[str] | None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Name):
            for scope in reversed(self.loops):
                if node.id in scope:
                    return scope[node.id]
            return self.constants.get(node.id)
        if isinstance(node, ast.Tuple | ast.List | ast.Set):
            parts = [self.values(element) for element in node.elts]
            return set().union(*parts) if all(part is not None for part in parts) else None
        return None

    def _loop(self, target: ast.AST, iterable: ast.AST) -> dict[str, set[str]]:
        values = self.values(iterable)
        return {target.id: values} if isinstance(target, ast.Name) and values is not None else {}

    def visit_For(self, node: ast.For) -> None:
        self.loops.append(self._loop(node.target, node.iter))
        self.generic_visit(node)
        self.loops.pop()

    def _visit_comprehension(self, node) -> None:
        self.loops.append({k: v for gen in node.generators for k, v in self._loop(gen.target, gen.iter).items()})
        self.generic_visit(node)
        self.loops.pop()

    visit_DictComp = visit_ListComp = visit_SetComp = visit_GeneratorExp = _visit_comprehension

    def _read(self, argument: ast.AST) -> None:
        values = self.values(argument)
        if values is None:
            self.unresolved.append(ast.unparse(argument))
        else:
            self.names.update(value for value in values if ENV_NAME.match(value))

    def visit_Call(self, node: ast.Call) -> None:
        function = ast.unparse(node.func)
        receiver = ast.unparse(node.func.value) if isinstance(node.func, ast.Attribute) else ""
        is_environ_get = function.endswith(".get") and "environ" in receiver and "request.environ" not in receiver
        if node.args and (is_environ_get or function in ("os.getenv", "dg.EnvVar", "EnvVar")):
            self._read(node.args[0])
        self.generic_visit(node)

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if ast.unparse(node.value) == "os.environ":
            self._read(node.slice)
        self.generic_visit(node)


def module_constants(tree: ast.Module, imported: dict[str, set[str]] | None = None) -> dict[str, set[str]]:
    """Module-level names bound to a string or a tuple of strings and such names (`imported` ones included)."""
    constants: dict[str, set[str]] = dict(imported or {})
    resolver = EnvironmentReads(constants)
    for statement in tree.body:
        if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
            target, value = statement.targets[0], statement.value
        elif isinstance(statement, ast.AnnAssign) and statement.value is not None:
            target, value = statement.target, statement.value
        else:
            continue
        if isinstance(target, ast.Name) and (values := resolver.values(value)) is not None:
            constants[target.id] = values
    return constants


def _imported(tree: ast.Module, by_module: dict[str, dict[str, set[str]]]) -> dict[str, set[str]]:
    constants: dict[str, set[str]] = {}
    for statement in tree.body:
        if isinstance(statement, ast.ImportFrom) and statement.module in by_module:
            for alias in statement.names:
                if alias.name in by_module[statement.module]:
                    constants[alias.asname or alias.name] = by_module[statement.module][alias.name]
    return constants


def code_reads() -> dict[str, set[str]]:
    """Relative path → the environment names that module reads."""
    paths = [*(REPO / "ingest_platform").rglob("*.py"), *(REPO / "webhook_app").rglob("*.py")]
    trees = {path: ast.parse(path.read_text()) for path in paths if "migrations" not in path.parts}
    names = {path: ".".join(path.relative_to(REPO).with_suffix("").parts) for path in trees}
    by_module = {names[path]: module_constants(tree) for path, tree in trees.items()}
    # Twice more, so a constant built from an imported one (`(SECRET_ENV, GRAPHQL_URL_ENV)`) resolves too.
    for _ in range(2):
        by_module = {names[path]: module_constants(tree, _imported(tree, by_module)) for path, tree in trees.items()}
    reads: dict[str, set[str]] = {}
    for path, tree in trees.items():
        constants = by_module[names[path]]
        visitor = EnvironmentReads(constants)
        visitor.visit(tree)
        relative = path.relative_to(REPO).as_posix()
        # The CLI reads what an operator's shell holds (its helpers take the name as an argument); no service runs it.
        if visitor.unresolved and relative not in PATTERNS and not relative.startswith("ingest_platform/cli/"):
            raise AssertionError(f"{relative} reads the environment through {visitor.unresolved}: name them")
        reads[relative] = visitor.names | PATTERNS.get(relative, set())
    return reads


def image_env(dockerfile: str) -> set[str]:
    text = (DOCKER / dockerfile).read_text().replace("\\\n", " ")
    return {
        name for line in re.findall(r"^ENV (.+)$", text, flags=re.MULTILINE) for name in re.findall(r"(\w+)=", line)
    }


def service_env(name: str) -> set[str]:
    service = SERVICES[name]
    dockerfile = (service.get("build") or {}).get("dockerfile", "docker/Dockerfile").split("/")[-1]
    if service.get("image") == "ingest_platform:browser":
        dockerfile = "Dockerfile.browser"
    return set(service.get("environment") or {}) | image_env(dockerfile)


def run_container_env() -> set[str]:
    """A run's container: its image's ENV and what the launcher forwards from the process that launches it (the
    daemon, or the webserver for a run launched from the UI), which must have each name itself."""
    forwarded = {entry.split("=")[0] for entry in LAUNCHER["env_vars"]}
    launchers = service_env("daemon") & service_env("webserver")
    return image_env("Dockerfile") | {name for name in forwarded if "=" in name or name in launchers}


def resource_reads() -> set[str]:
    """The variables the definitions' resources name in their fields (`EnvironmentSettingsResource.variables`)."""
    from ingest_platform.definitions import defs
    from ingest_platform.resources import EnvironmentSettingsResource

    resources = (defs.resources or {}).values()
    return {
        name
        for resource in resources
        if isinstance(resource, EnvironmentSettingsResource)
        for name in resource.variables()
    }


# Keyed like a module so `where_read` counts them with what Dagster's code reads.
READS = {**code_reads(), "ingest_platform/resources/ (the variables their fields name)": resource_reads()}


def where_read(prefix: str, *, exclude: str | None = None) -> set[str]:
    return {
        name
        for path, names in READS.items()
        if path.startswith(prefix) and not (exclude and path.startswith(exclude))
        for name in names
    } - set(DEFAULTS_SUIT_DOCKER)


# Dagster's code reads these in the code servers (definitions, sensors, schedules) and in the runs; the CLI
# (ingest_platform/cli/) is for an operator's shell, not a service.
DAGSTER_NAMES = where_read("ingest_platform/", exclude="ingest_platform/cli/")
WEBHOOK_NAMES = where_read("webhook_app/")


def test_the_walk_finds_the_settings_the_readme_names() -> None:
    assert {
        "DATABASE_URL",
        "ELASTICSEARCH_URL",
        "ELASTICSEARCH_API_KEY",
        "RTARF_NOTIFY_WEBHOOK_SECRET",
    } <= DAGSTER_NAMES
    assert {"VIVENU_WEBHOOK_PRODUCTION_URL", "BIGTOP_INGEST_TOKEN", "PROD_API", "WAREHOUSE_MIGRATIONS"} <= DAGSTER_NAMES
    assert {"INGEST_IP_HASH_SECRET", "INGEST_APP_TOKEN", "RTARF_API_TOKEN", "LANDING_DIR"} <= WEBHOOK_NAMES


@pytest.mark.parametrize("service", ["core_code", "browser_code"])
def test_each_code_server_gets_every_setting_dagster_reads(service: str) -> None:
    assert DAGSTER_NAMES - service_env(service) == set()


def test_run_containers_get_every_setting_dagster_reads() -> None:
    assert DAGSTER_NAMES - run_container_env() == set()


def test_the_webhook_service_gets_every_setting_the_app_reads() -> None:
    assert WEBHOOK_NAMES - service_env("webhook") == set()


def test_scaled_out_runs_only_check_the_schema_and_the_bridge_refuses_to_run() -> None:
    for service in ("core_code", "browser_code", "daemon", "webserver"):
        environment = SERVICES[service]["environment"]
        assert environment["WAREHOUSE_MIGRATIONS"] == "check", service
        assert environment["ENV"].startswith("${ENV:-production}"), service


def test_the_webhook_service_gets_none_of_dagsters_secrets() -> None:
    secrets = {
        "DATABASE_URL",
        "DAGSTER_POSTGRES_PASSWORD",
        "PROD_API",
        "ELASTICSEARCH_API_KEY",
        "RTARF_NOTIFY_WEBHOOK_SECRET",
    }
    assert set(SERVICES["webhook"]["environment"]) & secrets == set()
