"""The RTARF settings the sensors and the schedule read when they tick: the notification webhook and the look-back."""

from collections.abc import Mapping

from pydantic import Field

from ingest_platform.resources import EnvironmentSettingsResource

NOTIFY_URL_ENV = "RTARF_NOTIFY_WEBHOOK_URL"
NOTIFY_SECRET_ENV = "RTARF_NOTIFY_WEBHOOK_SECRET"  # noqa: S105 (a variable name, not a secret)
LOOKBACK_ENV = "RTARF_LOOKBACK_DAYS"
DEFAULT_LOOKBACK_DAYS = 3
MAX_LOOKBACK_DAYS = 31


def lookback_days(raw: str | None, *, variable: str = LOOKBACK_ENV) -> int:
    """How many past days the hourly look-back re-checks (0 turns it off), from the text of `variable`."""
    if raw is None or not raw.strip():
        return DEFAULT_LOOKBACK_DAYS
    try:
        days = int(raw.strip())
    except ValueError:
        raise ValueError(f"{variable} must be a whole number of days, got {raw!r}") from None
    if not 0 <= days <= MAX_LOOKBACK_DAYS:
        raise ValueError(f"{variable} must be between 0 and {MAX_LOOKBACK_DAYS}, got {days}")
    return days


class RtarfSettingsResource(EnvironmentSettingsResource):
    """Where the run-status sensors notify, with which signing secret, and how far back the schedule re-checks:
    each the value of the variable its field names, read when a sensor or schedule tick starts."""

    notify_url_env: str = Field(
        default=NOTIFY_URL_ENV, description="The variable holding the URL sync notifications are POSTed to."
    )
    notify_secret_env: str = Field(
        default=NOTIFY_SECRET_ENV, description="The variable holding the HMAC-SHA256 secret that signs them."
    )
    lookback_days_env: str = Field(
        default=LOOKBACK_ENV,
        description=f"The variable holding the days the hourly look-back re-checks (0-{MAX_LOOKBACK_DAYS}, "
        f"else {DEFAULT_LOOKBACK_DAYS}).",
    )

    def variables(self) -> Mapping[str, str | None]:
        return {
            self.notify_url_env: "RTARF sync notifications: none is sent without it",
            self.notify_secret_env: "the RTARF notifications' signature: they go unsigned without it",
            self.lookback_days_env: None,
        }

    def notify_url(self) -> str | None:
        return self.variable(self.notify_url_env)

    def notify_secret(self) -> str | None:
        return self.variable(self.notify_secret_env)

    def lookback_days(self) -> int:
        """The look-back days, or a ValueError naming the variable when its value is not 0-31."""
        return lookback_days(self.variable(self.lookback_days_env), variable=self.lookback_days_env)
