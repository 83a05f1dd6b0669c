"""Migration 0006 on a PostgreSQL warehouse that already holds rows an older intake let through: the upgrade
succeeds (the constraints are NOT VALID for old rows) and every row written afterwards is held to the limits."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from ingest_platform.resources.warehouse import create_engine
from ingest_platform.warehouse.migrate import current_revisions, upgrade
from ingest_platform.warehouse.tables import donations, events

YEAR_2300 = datetime(2300, 1, 1, tzinfo=UTC)


def donation(key: str, author_id: str) -> dict:
    return {
        "donation_key": key,
        "status": "succeeded",
        "amount_refunded": 0,
        "author_id": author_id,
        "status_event_id": "evt_1",
        "last_event_id": "evt_1",
        "last_event_at": datetime(2026, 3, 1, tzinfo=UTC),
    }


def test_an_old_bad_row_does_not_stop_the_upgrade_and_new_ones_are_refused(fresh_postgres_url: str) -> None:
    engine = create_engine(fresh_postgres_url)
    upgrade(engine, "0005")
    with engine.begin() as connection:
        connection.execute(events.insert().values(source_id=5, external_id="old", title="T", start_utc=YEAR_2300))
        connection.execute(donations.insert().values(donation("pi_old", "a" * 300)))

    upgrade(engine)

    # 0007 (events.cancelled_at) follows 0006 on the `events` branch: the upgrade went through the limits.
    assert "0007" in current_revisions(engine)
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(events)) == 1
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(events.insert().values(source_id=5, external_id="new", title="T", start_utc=YEAR_2300))
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:
        connection.execute(donations.insert().values(donation("pi_new", "a" * 300)))
