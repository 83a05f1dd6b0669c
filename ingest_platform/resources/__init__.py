"""What the resources share: optional settings named by environment variable and read when a run starts."""

from collections.abc import Mapping

import dagster as dg
from pydantic import PrivateAttr

from ingest_platform import settings


class EnvironmentSettingsResource(dg.ConfigurableResource):
    """A resource whose optional settings come from environment variables that its fields name.

    `dg.EnvVar` is for a setting a run cannot do without: Dagster fails the resource when the variable is unset and
    has no default for it (dagster-io/dagster#16232). A region's Vivenu key or the RTARF notification URL may be
    unset, so these resources hold the variables' names as fields (shown with the resource's config in the UI) and
    read their values once in `setup_for_execution`, when a run, sensor tick or schedule tick starts; never when
    the definitions load. Called outside Dagster (a plain method call), a value is read at the call.
    """

    # The variables' values as the run (or tick) started; None until then.
    _values: dict[str, str] | None = PrivateAttr(default=None)

    def variables(self) -> Mapping[str, str | None]:
        """Every variable the resource reads → what it sets and what happens without it; None for one whose
        default suits a deployment (a test hook), which `missing_settings` does not report."""
        return {}

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._values = settings.read_variables(self.variables())

    def variable(self, name: str) -> str | None:
        """The value of `name` (one of `variables()`), None when unset or blank."""
        values = self._values if self._values is not None else settings.read_variables([name])
        return values.get(name)

    def missing_settings(self) -> dict[str, str]:
        """The variables that are unset now → what they set and what happens without them: for the UI and the CLI
        to show before a launch. Reads the environment of the process that asks."""
        present = settings.read_variables(self.variables())
        return {name: purpose for name, purpose in self.variables().items() if purpose and name not in present}


def missing_settings(resources: Mapping[str, object]) -> dict[str, dict[str, str]]:
    """Resource key → its unset variables and what each is for, for every resource that names its settings'
    variables (e.g. `missing_settings(defs.resources)`); resources with nothing missing are left out."""
    missing = {}
    for key, resource in sorted(resources.items()):
        if isinstance(resource, EnvironmentSettingsResource) and (unset := resource.missing_settings()):
            missing[key] = unset
    return missing
