"""Load a batch of landing files into the warehouse: the step every landing-fed asset shares."""

from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import dagster as dg
from pydantic import BaseModel, ValidationError

from ingest_platform.landing import LandingFileError, LandingZone, Loaded
from ingest_platform.resources.landing import LandingZoneResource
from ingest_platform.resources.warehouse import WarehouseResource
from ingest_platform.warehouse.result import UpsertResult

# SQLAlchemy and the tables are imported on first use: loading the code location must stay cheap.
if TYPE_CHECKING:
    import sqlalchemy as sa

# A file's rows: a list, or an iterator that validates them as they are read (see `validated_items`).
RowsFromDocument = Callable[[Mapping[str, Any]], Iterable[dict[str, Any]]]
# Writes a batch's rows in the load's transaction: the table's result and any figures worth reporting. The rows are
# an iterable that reads the batch's files again each time it is iterated: read it once, or make a list.
WriteRows = Callable[["sa.Connection", Iterable[dict[str, Any]]], tuple[UpsertResult, dict[str, Any]]]

# A file at least this large is read with its `streamed_items` array left on disk, an item at a time.
STREAM_FILE_BYTES = 4 << 20
# The parsed rows of a batch's files are kept between the check and the write up to this many bytes of files;
# the files past it are read again for the write, so the batch's memory stays bounded whatever its size.
KEEP_PARSED_BYTES = 4 << 20


class LandingBatchConfig(dg.Config):
    """Which landing files a run loads. Sensors name them; left empty, the run loads its partition's day."""

    files: list[str] = []
    reload: bool = False  # also reload files the ledger already has (the upsert keeps that idempotent)


def load_landing_files(
    context: dg.AssetExecutionContext,
    *,
    config: LandingBatchConfig,
    stream: str,
    landing: LandingZoneResource,
    warehouse: WarehouseResource,
    rows_from_document: RowsFromDocument,
    table: "sa.Table | None" = None,
    key: Sequence[str] = (),
    write_rows: WriteRows | None = None,
    streamed_items: str | None = None,
) -> dg.MaterializeResult:
    """Upsert the rows of every loadable file and record each file in the ledger, in one transaction.

    The rows go into `table` by `key`, or through `write_rows` when a stream feeds several tables or needs more
    than an upsert (its figures join the metadata). With `streamed_items` (the dotted path of the array that holds a
    document's rows, e.g. "payload.events"), a large file is read an item at a time and its rows stream into the
    write: `rows_from_document` then gets that array as a lazy iterable. A file already in the ledger is skipped
    (unless `reload`) and archived if it is still in the inbox (a crash between a commit and the archive). A file
    that cannot be parsed,
    or whose rows the warehouse refuses, goes to quarantine with its reason and the rest load: when a batch's write
    fails on its data, the batch is halved and each half written in its own transaction until the files at fault
    stand alone. A warehouse that is down fails the run and quarantines nothing; the landing sensor's
    reconciliation asks again. Loaded files move to the archive only after their commit.
    """
    if write_rows is None:
        if table is None or not key:
            raise ValueError("load_landing_files needs either table and key or write_rows")
        write_rows = _upsert_into(table, key)
    zone = landing.zone()
    names = sorted(set(config.files)) or zone.files_for_day(stream, context.partition_key)
    with _warehouse_failures(stream):
        already_loaded = {} if config.reload else _ledgered(warehouse, stream, names)
    # A crash between a commit and its archive: the receipt tells the committed load's run and rows.
    zone.archive(stream, [already_loaded[name] for name in sorted(already_loaded)])

    batch: list[_ParsedFile] = []
    quarantined: dict[str, str] = {}
    kept_bytes = 0
    for name in names:
        if name in already_loaded:
            continue
        if zone.locate(stream, name) is None and zone.is_quarantined(stream, name):
            quarantined[name] = "quarantined by an earlier run"
            continue
        try:
            parsed = _ParsedFile(name, zone, stream, rows_from_document, streamed_items=streamed_items)
            kept_bytes += parsed.check(keep=kept_bytes < KEEP_PARSED_BYTES)
        except _FILE_PROBLEMS as error:
            reason = _reason(error)
            zone.quarantine(stream, name, reason)
            quarantined[name] = reason
            context.log.warning(f"quarantined {stream}/{name}: {reason}")
            continue
        batch.append(parsed)

    written = _Written()
    with _warehouse_failures(stream):
        _write_isolating(context, stream, batch, warehouse, write_rows, zone, written, quarantined)

    context.log.info(
        f"{stream}: {len(written.files)} files loaded, {len(already_loaded)} already loaded, "
        f"{len(quarantined)} quarantined; rows {written.result.as_metadata()}"
    )
    return dg.MaterializeResult(
        metadata={
            "files": len(names),
            "files_loaded": len(written.files),
            "files_already_loaded": len(already_loaded),
            "files_quarantined": len(quarantined),
            "quarantined": dg.MetadataValue.json(quarantined),
            "rows": written.rows,
            **written.result.as_metadata(),
            **written.figures,
        }
    )


class _ParsedFile:
    """A landed file checked before its write: its rows kept, or read again from the file as they are written.

    A large file with `streamed_items` is only parsed here (its items skipped); its items are validated as the
    write reads them, and a problem with one then quarantines the file exactly as it would have here.
    """

    def __init__(
        self,
        name: str,
        zone: LandingZone,
        stream: str,
        rows_from_document: RowsFromDocument,
        *,
        streamed_items: str | None,
    ) -> None:
        self.name = name
        self.count = 0
        self.streamed = False
        self._zone, self._stream, self._rows_from_document = zone, stream, rows_from_document
        self._streamed_items = streamed_items
        self._kept: list[dict[str, Any]] | None = None
        self._document: Mapping[str, Any] | None = None  # the header of a streamed file: its items stay on disk

    def check(self, *, keep: bool) -> int:
        """Read the file (raising what makes it unloadable); returns the bytes of file whose rows are kept."""
        size = self._zone.size(self._stream, self.name)
        if self._streamed_items and size >= STREAM_FILE_BYTES:
            self._document = self._zone.read_streamed(self._stream, self.name, items=self._streamed_items)
            self.streamed = True
            return 0
        rows = self._rows_from_document(self._zone.read(self._stream, self.name))
        if keep:
            self._kept = list(rows)
            self.count = len(self._kept)
            return size
        self.count = sum(1 for _ in rows)
        return 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        if self._kept is not None:
            yield from self._kept
            return
        self.count = 0
        try:
            document = self._document if self._document is not None else self._zone.read(self._stream, self.name)
            for row in self._rows_from_document(document):
                self.count += 1
                yield row
        except _FILE_PROBLEMS as error:
            raise _UnloadableFileError(self, _reason(error)) from None


# What makes a landed file unloadable (it goes to quarantine), as opposed to a warehouse or code problem.
_FILE_PROBLEMS = (LandingFileError, ValidationError, ValueError, TypeError, KeyError)


class _UnloadableFileError(Exception):
    """A file's rows failed their check while being written: the file goes to quarantine, the rest are written."""

    def __init__(self, parsed: _ParsedFile, reason: str) -> None:
        super().__init__(reason)
        self.parsed, self.reason = parsed, reason


class _BatchRows:
    """The rows of a group of files, read anew each time it is iterated (the upsert reads it again to name a
    refused value's column)."""

    def __init__(self, files: list[_ParsedFile]) -> None:
        self._files = files

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for parsed in self._files:
            yield from parsed


def validated_items(model: type[BaseModel], items: Iterable[Any], *, at: str) -> Iterator[Any]:
    """Each of `items` validated as `model` as it is read; a problem's location is `at`, the position, the field."""
    for position, item in enumerate(items):
        try:
            yield model.model_validate(item)
        except ValidationError as error:
            raise ValidationError.from_exception_data(
                error.title,
                [
                    {"type": problem["type"], "loc": (at, position, *problem["loc"]), "input": problem["input"]}
                    | ({"ctx": problem["ctx"]} if "ctx" in problem else {})
                    for problem in error.errors()
                ],
            ) from None


@dataclass
class _Written:
    """What the committed writes of one run add up to."""

    files: list[str] = field(default_factory=list)
    rows: int = 0
    result: UpsertResult = field(default_factory=UpsertResult)
    figures: dict[str, Any] = field(default_factory=dict)

    def add(self, files: list[_ParsedFile], result: UpsertResult, figures: Mapping[str, Any]) -> None:
        self.files += [parsed.name for parsed in files]
        self.rows += sum(parsed.count for parsed in files)
        self.result += result
        self.figures = _sum_figures(self.figures, figures)


def _write_isolating(
    context: dg.AssetExecutionContext,
    stream: str,
    batch: list[_ParsedFile],
    warehouse: WarehouseResource,
    write_rows: WriteRows,
    zone: LandingZone,
    written: _Written,
    quarantined: dict[str, str],
) -> None:
    """Write `batch`; on a data error, halve it and write each half on its own, down to the files at fault.

    One bad file among n costs about 2·log2(n) extra transactions; the good files around it commit as they go.
    """
    from ingest_platform.warehouse.errors import classify, describe, schema_names
    from ingest_platform.warehouse.tables import landing_ledger
    from ingest_platform.warehouse.upsert import upsert

    groups = deque([batch] if batch else [])
    while groups:
        group = groups.popleft()
        any_rows = any(parsed.count or parsed.streamed for parsed in group)
        try:
            with warehouse.begin(write=True) as connection:
                result, figures = write_rows(connection, _BatchRows(group)) if any_rows else (UpsertResult(), {})
                # After the write: a streamed file's rows are counted as the write reads them.
                ledger_rows = [
                    {"stream": stream, "file_name": parsed.name, "rows": parsed.count, "run_id": context.run.run_id}
                    for parsed in group
                ]
                upsert(connection, landing_ledger, ledger_rows, key=["stream", "file_name"])
        except _UnloadableFileError as problem:
            # Rolled back; the others are written again without it.
            zone.quarantine(stream, problem.parsed.name, problem.reason)
            quarantined[problem.parsed.name] = problem.reason
            context.log.warning(f"quarantined {stream}/{problem.parsed.name}: {problem.reason}")
            rest = [parsed for parsed in group if parsed is not problem.parsed]
            if rest:
                groups.appendleft(rest)
            continue
        except Exception as error:
            if classify(error) != "data":
                raise
            if len(group) > 1:
                middle = len(group) // 2
                groups.extendleft([group[middle:], group[:middle]])
                continue
            (parsed,) = group
            reason = f"the warehouse refused the rows: {describe(error, known_names=schema_names())}"
            zone.quarantine(stream, parsed.name, reason)
            quarantined[parsed.name] = reason
            context.log.warning(f"quarantined {stream}/{parsed.name}: {reason}")
            continue
        loaded_at = datetime.now(UTC)
        zone.archive(stream, [Loaded(parsed.name, parsed.count, context.run.run_id, loaded_at) for parsed in group])
        written.add(group, result, figures)


class WarehouseUnavailableError(Exception):
    """The warehouse could not take a load for a reason that is not a file's (down, lost connection, a bug)."""


@contextmanager
def _warehouse_failures(stream: str) -> Iterator[None]:
    """Fail the run with the error's SQLSTATE and names only: the database's own text can carry row values."""
    try:
        yield
    except (LandingFileError, OSError):
        raise
    except Exception as error:
        from ingest_platform.warehouse.errors import classify, describe, schema_names

        kind = classify(error)
        what = "unavailable" if kind == "unavailable" else "failed"
        # `from None`: the original's text (and Dagster's record of a cause) may quote the rows.
        raise WarehouseUnavailableError(
            f"{stream}: warehouse {what}, nothing quarantined, the files stay in the inbox for the retry: "
            f"{describe(error, known_names=schema_names())}"
        ) from None


def _sum_figures(total: Mapping[str, Any], more: Mapping[str, Any]) -> dict[str, Any]:
    summed = dict(total)
    for name, value in more.items():
        if name not in summed or isinstance(value, bool) or not isinstance(value, int | dict):
            summed[name] = value
        elif isinstance(value, int):
            summed[name] += value
        else:
            summed[name] = {
                key: summed[name].get(key, 0) + value.get(key, 0) for key in sorted({*summed[name], *value})
            }
    return summed


def _upsert_into(table: "sa.Table", key: Sequence[str]) -> WriteRows:
    from ingest_platform.warehouse.upsert import upsert

    def write(connection: "sa.Connection", rows: Iterable[dict[str, Any]]) -> tuple[UpsertResult, dict[str, Any]]:
        return upsert(connection, table, rows, key=key), {}

    return write


def _ledgered(warehouse: WarehouseResource, stream: str, names: list[str]) -> dict[str, Loaded]:
    import sqlalchemy as sa

    from ingest_platform.warehouse.tables import landing_ledger

    if not names:
        return {}
    ledger = landing_ledger.c
    query = sa.select(ledger.file_name, ledger.rows, ledger.run_id, ledger.loaded_at).where(
        ledger.stream == stream, ledger.file_name.in_(names)
    )
    with warehouse.engine.connect() as connection:
        return {row.file_name: Loaded(*row) for row in connection.execute(query)}


def _reason(error: Exception) -> str:
    if isinstance(error, ValidationError):
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}" for problem in error.errors()
        )
        return f"payload does not match the schema: {problems}"
    return str(error) or type(error).__name__
