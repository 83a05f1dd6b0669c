"""The Vivenu sync's warehouse side: the tickets as pulled, the delivery ledger and the progress read from it.

The ledger is the source of truth for "was this ticket delivered to this endpoint": a row becomes `sending`
(attempts + 1) with each request and `acknowledged` once the receiver answered 2xx. A run sends only rows that
are not acknowledged, so a run killed at any point resumes with the tickets whose acknowledgement was not yet
committed: the never-sent ones, plus the few that were on the wire or whose acknowledgement was still queued for
the ledger's writer; those are sent again with the same envelope id, which the receiver drops as a duplicate.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from ingest_platform.vivenu.tickets import envelope_id
from ingest_platform.warehouse.tables.vivenu import vivenu_deliveries, vivenu_delivery_runs, vivenu_tickets
from ingest_platform.warehouse.upsert import upsert

DELIVERY_KEY = ["region", "ticket_id", "endpoint"]
RUN_KEY = ["region", "event_id", "endpoint"]


def stored_tickets(connection: sa.Connection, *, region: str, event_id: str) -> list[dict[str, Any]]:
    """The event's tickets as pulled, in a stable order."""
    query = (
        sa.select(vivenu_tickets.c.ticket)
        .where(vivenu_tickets.c.region == region, vivenu_tickets.c.event_id == event_id)
        .order_by(vivenu_tickets.c.ticket_id)
    )
    return list(connection.scalars(query))


class LeaseHeldError(RuntimeError):
    """Another live run is delivering this event to this endpoint."""


@dataclass
class DeliveryLedger:
    """The ledger rows of one event towards one endpoint."""

    engine: sa.Engine
    region: str
    event_id: str
    endpoint: str
    mode: str
    run_id: str
    _writer: LedgerWriter | None = field(default=None, init=False, repr=False)

    def _ticket(self, ticket_id: str) -> sa.ColumnElement[bool]:
        return sa.and_(
            vivenu_deliveries.c.region == self.region,
            vivenu_deliveries.c.ticket_id == ticket_id,
            vivenu_deliveries.c.endpoint == self.endpoint,
        )

    def _event(self) -> sa.ColumnElement[bool]:
        return sa.and_(
            vivenu_delivery_runs.c.region == self.region,
            vivenu_delivery_runs.c.event_id == self.event_id,
            vivenu_delivery_runs.c.endpoint == self.endpoint,
        )

    def acquire_lease(self, *, seconds: float, wait_seconds: float, sleep: Callable[[float], None]) -> None:
        """Take the event's delivery lease, waiting up to `wait_seconds` for a holder's lease to run out."""
        with self.engine.begin() as connection:
            upsert(
                connection,
                vivenu_delivery_runs,
                [{"region": self.region, "event_id": self.event_id, "endpoint": self.endpoint, "mode": self.mode}],
                key=RUN_KEY,
            )
        deadline = _now() + timedelta(seconds=wait_seconds)
        while True:
            now = _now()
            with self.engine.begin() as connection:
                taken = connection.execute(
                    vivenu_delivery_runs.update()
                    .where(
                        self._event(),
                        sa.or_(
                            vivenu_delivery_runs.c.lease_run_id.is_(None),
                            vivenu_delivery_runs.c.lease_run_id == self.run_id,
                            vivenu_delivery_runs.c.lease_expires_at < now,
                        ),
                    )
                    .values(
                        lease_run_id=self.run_id,
                        lease_expires_at=now + timedelta(seconds=seconds),
                        last_run_id=self.run_id,
                        last_run_at=now,
                    )
                ).rowcount
                if taken:
                    return
                holder, expires = connection.execute(
                    sa.select(vivenu_delivery_runs.c.lease_run_id, vivenu_delivery_runs.c.lease_expires_at).where(
                        self._event()
                    )
                ).one()
            if now >= deadline:
                raise LeaseHeldError(
                    f"run {holder} is delivering {self.region}:{self.event_id} to this endpoint (lease until "
                    f"{expires.isoformat()}); try again when it has finished"
                )
            sleep(min(1.0, max(0.05, (expires - now).total_seconds())))

    def renew_lease(self, *, seconds: float) -> None:
        with self.engine.begin() as connection:
            connection.execute(
                vivenu_delivery_runs.update()
                .where(self._event(), vivenu_delivery_runs.c.lease_run_id == self.run_id)
                .values(lease_expires_at=_now() + timedelta(seconds=seconds))
            )

    def release_lease(self, *, selected: int) -> None:
        """Record the event's counts from the ledger and let the next run in."""
        with self.engine.begin() as connection:
            counts = dict(
                connection.execute(
                    sa.select(vivenu_deliveries.c.status, sa.func.count())
                    .where(
                        vivenu_deliveries.c.region == self.region,
                        vivenu_deliveries.c.event_id == self.event_id,
                        vivenu_deliveries.c.endpoint == self.endpoint,
                    )
                    .group_by(vivenu_deliveries.c.status)
                ).all()
            )
            acknowledged = counts.get("acknowledged", 0)
            unfinished = selected - acknowledged
            connection.execute(
                vivenu_delivery_runs.update()
                .where(self._event(), vivenu_delivery_runs.c.lease_run_id == self.run_id)
                .values(
                    lease_run_id=None,
                    lease_expires_at=None,
                    selected=selected,
                    acknowledged=acknowledged,
                    failed=counts.get("failed", 0),
                    completed_at=_now() if unfinished <= 0 else None,
                )
            )

    def register(self, ticket_ids: Iterable[str]) -> None:
        """Give every selected ticket a ledger row; existing rows keep their status."""
        rows = [
            {
                "region": self.region,
                "ticket_id": ticket_id,
                "endpoint": self.endpoint,
                "event_id": self.event_id,
                "envelope_id": envelope_id(ticket_id, self.endpoint),
            }
            for ticket_id in ticket_ids
        ]
        with self.engine.begin() as connection:
            upsert(connection, vivenu_deliveries, rows, key=DELIVERY_KEY)

    def acknowledged(self, ticket_ids: Sequence[str]) -> set[str]:
        query = sa.select(vivenu_deliveries.c.ticket_id).where(
            vivenu_deliveries.c.region == self.region,
            vivenu_deliveries.c.event_id == self.event_id,
            vivenu_deliveries.c.endpoint == self.endpoint,
            vivenu_deliveries.c.status == "acknowledged",
        )
        wanted = set(ticket_ids)
        with self.engine.connect() as connection:
            return {ticket_id for ticket_id in connection.scalars(query) if ticket_id in wanted}

    def mark_sending(self, ticket_id: str) -> None:
        self._update(
            ticket_id,
            status="sending",
            attempts=vivenu_deliveries.c.attempts + 1,
            last_attempt_at=_now(),
            run_id=self.run_id,
        )

    def mark_acknowledged(self, ticket_id: str, status_code: int) -> None:
        self._update(
            ticket_id, status="acknowledged", last_status_code=status_code, last_error=None, acknowledged_at=_now()
        )

    def note_error(self, ticket_id: str, status_code: int | None, error: str) -> None:
        self._update(ticket_id, last_status_code=status_code, last_error=error)

    def mark_failed(self, ticket_id: str, status_code: int | None, error: str) -> None:
        self._update(ticket_id, status="failed", last_status_code=status_code, last_error=error)

    def _update(self, ticket_id: str, **values: Any) -> None:
        writer = self._writer
        if writer is not None:
            writer.put((ticket_id, values))
        else:
            self.apply([(ticket_id, values)])

    def apply(self, updates: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Write ticket updates in order, in one transaction."""
        with self.engine.begin() as connection:
            for ticket_id, values in updates:
                # Never downgrade an acknowledged row, whatever a late thread or an overlapping run tries.
                connection.execute(
                    vivenu_deliveries.update()
                    .where(self._ticket(ticket_id), vivenu_deliveries.c.status != "acknowledged")
                    .values(**values)
                )

    @contextmanager
    def writing_in_background(self) -> Iterator[LedgerWriter]:
        """Route ticket updates through one writer thread while the block runs, so no sender ever waits for a
        commit; everything is committed when the block ends."""
        writer = LedgerWriter(self)
        self._writer = writer
        try:
            yield writer
        finally:
            self._writer = None
            writer.close()


class LedgerWriter:
    """Commits queued ledger updates as fast as the database allows: one transaction for whatever has queued up
    since the last commit, so a slow commit delays the ledger a little and the senders not at all. A process killed
    before a commit loses at most those acknowledgements; their tickets are sent again, with the same envelope id."""

    def __init__(self, ledger: DeliveryLedger) -> None:
        self._ledger = ledger
        self._queue: queue.SimpleQueue[tuple[str, dict[str, Any]] | None] = queue.SimpleQueue()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="vivenu-ledger", daemon=True)
        self._thread.start()

    def put(self, update: tuple[str, dict[str, Any]]) -> None:
        if self.error is not None:
            raise RuntimeError("the delivery ledger cannot be written; sending stopped") from self.error
        self._queue.put(update)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            updates = [update for update in batch if update is not None]
            if self.error is None and updates:
                try:
                    self._ledger.apply(updates)
                except Exception as error:
                    # Kept for the senders, which stop at their next update, and for close(), which raises it.
                    self.error = error
            if None in batch:
                return


def _now() -> datetime:
    return datetime.now(UTC)


def region_progress(connection: sa.Connection, *, region: str) -> list[dict[str, Any]]:
    """The seed's progress file per endpoint of a region, from the ledger: ticket ids, never personal data."""
    runs = vivenu_delivery_runs
    deliveries = vivenu_deliveries
    endpoints = connection.execute(
        sa.select(
            runs.c.endpoint,
            sa.func.max(runs.c.mode),
            sa.func.max(runs.c.last_run_at),
        )
        .where(runs.c.region == region)
        .group_by(runs.c.endpoint)
        .order_by(runs.c.endpoint)
    ).all()
    processed_events = connection.execute(
        sa.select(runs.c.endpoint, runs.c.event_id)
        .where(runs.c.region == region, runs.c.completed_at.is_not(None), runs.c.failed == 0)
        .order_by(runs.c.endpoint, runs.c.event_id)
    ).all()
    sent = dict(
        connection.execute(
            sa.select(deliveries.c.endpoint, sa.func.count())
            .where(deliveries.c.region == region, deliveries.c.status == "acknowledged")
            .group_by(deliveries.c.endpoint)
        ).all()
    )
    errors = connection.execute(
        sa.select(
            deliveries.c.endpoint,
            deliveries.c.event_id,
            deliveries.c.ticket_id,
            deliveries.c.attempts,
            deliveries.c.last_error,
            deliveries.c.last_attempt_at,
        )
        .where(deliveries.c.region == region, deliveries.c.status == "failed")
        .order_by(deliveries.c.endpoint, deliveries.c.event_id, deliveries.c.ticket_id)
    ).all()
    progress = []
    for endpoint, mode, last_run in endpoints:
        progress.append(
            {
                "region": region,
                "endpoint": endpoint,
                "mode": mode,
                "events_processed": [event for where, event in processed_events if where == endpoint],
                "tickets_sent": sent.get(endpoint, 0),
                "errors": [
                    {
                        "event_id": event_id,
                        "ticket_id": ticket_id,
                        "attempts": attempts,
                        "error": last_error,
                        "at": at.isoformat() if at else None,
                    }
                    for where, event_id, ticket_id, attempts, last_error, at in errors
                    if where == endpoint
                ],
                "last_run": last_run.isoformat() if last_run else None,
            }
        )
    return progress
