"""One sync in several dlt load packages: each commits its rows before the next is fetched.

dlt extracts a whole resource into one load package, and only then normalizes and loads it: a
run killed after an hour of fetching keeps nothing. :class:`Packages` cuts a run's page stream
into packages of about ``rows`` records (``RESTSYNC_PACKAGE_ROWS``) that the run body
(orchestration/run.py) extracts, normalizes and loads one after the other through
dagster-dlt, as it loads the windows of a windowed sync. Each resource's generator (dlt's own
``rest_api`` paginating generator, with its paginator, prefetcher and page checks) is made once
and kept across the packages: the head of the resource's pipe becomes a :class:`ResumableHead`
(through dlt's public ``source.resources.pipes`` and ``Pipe.replace_gen``), which dlt's pipe
evaluates at every extract and which hands on the next page, or ends the extract at a package
boundary. A boundary falls only between pages, where the resource's Arrow step holds no
gathered rows (``ArrowPages.holds_rows``; once a package has its records, the step sends what
it gathered with the next page, ``ArrowPages.flush_now``); the page read to see whether one
follows is kept for the next package, so the last package is never empty. The Arrow step starts a new normalizer
for each package (its load id), reading the schema the previous package saved, as a second
sync does. Every package is loaded by the same ``pipeline.load`` as a single load, so it takes
the same locks (load/locks.py's ``load_one_at_a_time``), one package after the other, in order.

**Read ahead** (``RESTSYNC_PACKAGE_READ_AHEAD``, off by default: docs/throughput.md has the
figures). dlt's pipeline runs its steps one after the
other, and is not made to be driven from two threads (its state, schemas and trace are the
pipeline object's). What can run beside it is the resource's generator: :class:`ReadAhead` reads
the pages in a thread of its own, up to a package of records ahead, so the next package is
fetched and parsed while this one is normalized and loaded (DuckDB's work, outside Python's
interpreter lock). The pipeline, its state and every load stay on the run's thread.

**What may be cut** (:func:`why_one_package`; anything else loads in one package, as before,
and the run's log says why). A committed package must leave the destination in a state from
which the next sync is exact, whatever happens to the packages after it:

- ``merge`` on a primary key (dlt's ``delete-insert`` or ``upsert``), no cursor: each package
  merges its records by key. Killed after package k, the destination holds the first k packages'
  records merged; the next sync reads everything again and merges it: exact.
- ``merge`` on a primary key **with a cursor** (``incremental``): a package's state is what
  the next sync starts from, and the API need not return records in cursor order, so a package
  that committed the largest cursor it saw would make the next sync skip the older changes still
  on later pages. Every package but the resource's last commits the cursor the run started from
  (:meth:`ResumableHead._commit_start_cursor`); the last commits the run's cursor, dlt's
  ``last_value_func`` over what every package reached, with the boundary hashes of the packages
  that reached it (what one package would have committed). Killed after package k, the next
  sync reads again from where this one started and merges: exact. dlt's incremental binds to
  the committed state at every extract, so each package filters from the run's start, as one
  package would. A cursor with ``end_value`` (a bounded range: dlt keeps no state), ``lag`` or
  ``row_order`` (dlt may close the pages early): one package.
- ``append``: no. Without a cursor the next sync reads everything again and appends it: the
  killed run's committed packages would stay as duplicates; with a cursor, the next sync starts
  from the run's start (above) and appends the committed packages' records again. (Safe would
  be a cursor committed per package, which needs records sorted by it: an order restsync cannot
  verify before the later pages arrive.)
- ``replace``: no. Each package would replace the previous one's rows.
- ``merge`` with ``scd2``: no. Each package retires the rows it does not hold.
- ``merge`` with a ``merge_key`` (or no primary key): no. A later package holding records of
  the same merge key deletes the earlier package's rows of it.
- Windowed syncs (extract/windows.py) already commit per window, with the window's end as a
  cursor that is safe by construction; partition runs are bounded loads: one package each.
- A resource resolved from another's records (``resolve``), one dlt extracts in parallel
  (``parallelized``: its pages come as deferred calls), dlt's ``add_limit``: one package.
"""

from __future__ import annotations

import collections
import copy
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from restsync_dagster.connector import ResolvedResource
from restsync_dagster.extract.arrow import ArrowPages


def why_one_package(
    source: Any, resolved: Mapping[str, ResolvedResource] | None = None
) -> str | None:
    """Why the selected resources of ``source`` (a dlt source, hints final) must load in one
    package, or None when each package may commit on its own (see the module's rules).

    Args:
        source: The run's dlt source.
        resolved: The connector's resources by name: a ``rest_api`` resource's incremental is
            handed to its generator when dlt first evaluates it, so dlt's resource does not show
            it before; the connector's ``incremental`` (or ``type: incremental`` param) does.
    """
    pipes = {pipe.name: pipe for pipe in source.resources.pipes}
    for resource in source.selected_resources.values():
        name = resource.name
        if resource.is_transformer:
            return f"resource {name!r} is resolved from another resource's records"
        if _is_parallel(pipes[name].gen):
            return f"resource {name!r} is extracted in parallel (dlt defers its pages)"
        for cursor in _cursors(resource, (resolved or {}).get(name)):
            if cursor.get("end_value") is not None:
                return f"resource {name!r} reads a bounded range of its cursor (end_value)"
            if cursor.get("lag"):
                return f"resource {name!r} lags its cursor"
            if cursor.get("row_order"):
                return f"resource {name!r} declares a row_order (dlt may end its pages early)"
        if resource.limit is not None:
            return f"resource {name!r} reads a limited number of pages"
        try:
            table = resource.compute_table_schema()
        except Exception as exc:  # hints computed per record: dlt needs an item to tell
            return f"resource {name!r} computes its hints per record ({type(exc).__name__})"
        disposition = table.get("write_disposition") or "append"
        if disposition != "merge":
            return f"resource {name!r} is written with {disposition!r}"
        strategy = table.get("x-merge-strategy") or "delete-insert"
        if strategy not in ("delete-insert", "upsert"):
            return f"resource {name!r} merges with strategy {strategy!r}"
        columns = (table.get("columns") or {}).values()
        if any(column.get("merge_key") for column in columns):
            return f"resource {name!r} merges on a merge_key"
        if not any(column.get("primary_key") for column in columns):
            return f"resource {name!r} merges without a primary key"
    return None


def _cursors(resource: Any, resolved: ResolvedResource | None) -> list[Mapping[str, Any]]:
    """The settings of every cursor a resource is known to have."""
    found: list[Mapping[str, Any]] = []
    cursor = cursor_of_wrapper(resource.incremental)
    if cursor is not None:
        found.append(
            {"end_value": cursor.end_value, "lag": cursor.lag, "row_order": cursor.row_order}
        )
    if resolved is not None:
        if resolved.incremental:
            found.append(resolved.incremental)
        params = resolved.endpoint.get("params") or {}
        found += [
            p for p in params.values() if isinstance(p, Mapping) and p.get("type") == "incremental"
        ]
    return found


def cursor_of_wrapper(found: Any) -> Any:
    """The ``dlt.sources.incremental`` behind what ``DltResource.incremental`` gives (dlt's
    wrapper of it, or it), or None."""
    return getattr(found, "incremental", found)


def _is_parallel(gen: Any) -> bool:
    """Whether ``gen`` is dlt's ``parallelized`` wrapper, which yields deferred calls (each
    page read in dlt's pool) instead of pages."""
    from dlt.extract.utils import wrap_parallel_iterator

    def pages() -> Iterator[Any]:
        yield from ()

    code = wrap_parallel_iterator(pages).__code__  # type: ignore[attr-defined]
    return getattr(gen, "__code__", None) is code


class Packages:
    """The package boundaries of one run (see the module).

    Args:
        rows: Records per package: a boundary falls at the first page boundary after ``rows``
            records of the package (and where no Arrow step holds gathered rows).
        seconds: Or after this many seconds of extracting the package, whichever comes first
            (0: records alone). What a killed run loses is bounded in time, and a package's
            fixed cost (docs/throughput.md: 1-2.5 s, dagster-dlt's restore of the pipeline
            and a merge scanning the tables) stays a small part of the time between two.
        clock: Seconds, monotonic (a test's stand-in for ``time.monotonic``).
    """

    def __init__(
        self,
        rows: int,
        read_ahead: bool = False,
        seconds: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rows = rows
        self.read_ahead = read_ahead
        self.seconds = seconds
        self._clock = clock
        #: 0-based number of the package being extracted.
        self.index = 0
        self._counted = 0
        #: When the package under way started to be extracted.
        self._began = clock()
        self._heads: list[ResumableHead] = []
        self._source: Any = None
        self._schema: Any = None

    @classmethod
    def install(
        cls, source: Any, rows: int, read_ahead: bool = False, seconds: float = 0.0
    ) -> Packages:
        """Make the head of every selected resource's pipe of ``source`` resumable (and, with
        ``read_ahead``, read by a thread of its own up to a package ahead)."""
        packages = cls(rows, read_ahead, seconds)
        packages._source = source
        packages._schema = source.schema.clone()
        selected = set(source.selected_resources)
        for pipe in source.resources.pipes:
            if pipe.name not in selected or pipe.has_parent:
                continue
            arrow = next((step for step in pipe.steps if isinstance(step, ArrowPages)), None)
            if arrow is not None:
                arrow.flush_now = lambda: packages.cutting
            wrapper = source.resources[pipe.name].incremental
            head = ResumableHead(packages, pipe.gen, arrow, pipe.name, wrapper)
            if arrow is not None and arrow.paginator is not None and read_ahead:
                # The step asks the paginator whether a page follows the one it holds; read
                # ahead, the paginator is pages further on: the step asks the head instead,
                # which recorded the paginator's answer as each page was read.
                head.paginator, arrow.paginator = arrow.paginator, head.clock
            pipe.replace_gen(head)
            packages._heads.append(head)
        return packages

    @property
    def cutting(self) -> bool:
        """Whether the package under way has its records, or its time: resources stop at their
        next page boundary. A package holds at least one record."""
        if self._counted >= self.rows:
            return True
        return bool(self.seconds and self._counted and self._clock() - self._began >= self.seconds)

    @property
    def done(self) -> bool:
        """Whether every resource has read its last page (a resource dlt did not extract, one
        outside the run's selection, reads none)."""
        return all(head.finished or not head.started for head in self._heads)

    def count(self, rows: int) -> None:
        self._counted += rows

    def next_package(self) -> None:
        """The previous package is committed: count the next one's records from zero, and give
        the source back the schema it was built with. dlt's extract replaces a source's schema
        with the pipeline's (and dagster-dlt's metadata takes keys out of its columns); the next
        extract merges the source's schema into the one dlt restores, as for a new source."""
        self.index += 1
        self._counted = 0
        self._began = self._clock()
        if self._source is not None:
            self._source.schema = self._schema.clone()

    def close(self) -> None:
        """Close the resources' generators (dlt does not close a head it did not make)."""
        for head in self._heads:
            head.close()


class ResumableHead:
    """The head of one resource's pipe, kept across the run's packages.

    dlt calls it at the start of every extract (``Pipe.evaluate_gen``); the first call makes the
    resource's real generator (inside dlt's extract, as dlt would), later ones resume it. It
    ends an extract at a package boundary (see :class:`Packages`) and ends for good when the
    real generator does.
    """

    def __init__(
        self,
        packages: Packages,
        make: Any,
        arrow: ArrowPages | None,
        name: str = "",
        incremental: Any = None,
    ) -> None:
        self.packages = packages
        self.make = make
        self.arrow = arrow
        self.name = name
        #: What ``DltResource.incremental`` gave: dlt's wrapper of the resource's incremental,
        #: which holds it once dlt has evaluated the resource (the first package).
        self.incremental = incremental
        #: The cursor state the run started from, and what each cut package had reached.
        self._started_from: dict[str, Any] = {}
        self._reached: list[dict[str, Any]] = []
        self.finished = False
        #: The resource's paginator, when read ahead (see :meth:`Packages.install`).
        self.paginator: Any = None
        #: What the paginator said when the page last handed on was read.
        self.clock = PageClock()
        self._real: Iterator[Any] | None = None
        self._kept: list[Page] = []

    def __call__(self) -> ResumableHead:
        if self._real is None:
            if self.incremental is not None:
                # Before dlt binds the incremental (in make()), which fills an empty state.
                self._started_from = copy.deepcopy(self._cursor_state(create=False))
            real = iter(self.make() if callable(self.make) else self.make)
            self._real = (
                ReadAhead(real, self._read, self.packages.rows)
                if self.packages.read_ahead
                else Direct(real, self._read)
            )
        return self

    def _read(self, real: Iterator[Any]) -> Page:
        """The next page of ``real``, with what the paginator says after it."""
        item = next(real)
        paginator = self.paginator
        if paginator is None:
            return Page(item)
        return Page(item, paginator.pages, paginator.has_next_page)

    @property
    def started(self) -> bool:
        return self._real is not None

    def __iter__(self) -> ResumableHead:
        return self

    def __next__(self) -> Any:
        if self._kept:
            return self._handed_on(self._kept.pop())
        if self.finished or self._real is None:
            raise StopIteration
        at_boundary = self.arrow is None or not self.arrow.holds_rows()
        try:
            page = next(self._real)
        except StopIteration:
            self.finished = True
            if self._reached:
                self._commit_run_cursor()
            raise
        if self.packages.cutting and at_boundary:
            self._kept.append(page)  # the first page of the next package
            if self.cursor is not None:
                self._commit_start_cursor()
            raise StopIteration
        return self._handed_on(page)

    @property
    def cursor(self) -> Any:
        """The resource's ``dlt.sources.incremental``, once dlt has bound it; else None."""
        return cursor_of_wrapper(self.incremental)

    def _cursor_state(self, create: bool = True) -> dict[str, Any]:
        """The resource's cursors in the state of the package being extracted (dlt's
        ``incremental`` entry of the resource's state: one per cursor path)."""
        import dlt

        state = dlt.current.resource_state(self.name)
        found: dict[str, Any] = (
            state.setdefault("incremental", {}) if create else state.get("incremental", {})
        )
        return found

    def _commit_start_cursor(self) -> None:
        """A package ends before the resource's last page: it commits the cursor the run started
        from (what the next sync needs if no later package commits), and the cursor it reached
        is kept for the last package."""
        live = self._cursor_state()
        self._reached.append(copy.deepcopy(live))
        for path in set(live) | set(self._started_from):
            entry = live.setdefault(path, {})
            entry.clear()
            entry.update(copy.deepcopy(self._started_from.get(path, {})))

    def _commit_run_cursor(self) -> None:
        """The resource's last package commits the cursor of the whole run: dlt's
        ``last_value_func`` over what every package reached, with the boundary hashes of each
        package that reached it (what one package would have committed)."""
        incremental = self.cursor
        live = self._cursor_state()
        for path, entry in live.items():
            reached = [seen[path] for seen in self._reached if seen.get(path)] + [entry]
            values = tuple(e["last_value"] for e in reached if e.get("last_value") is not None)
            if not values:
                continue
            last = incremental.last_value_func(values)
            hashes: list[Any] = []
            for seen in reached:
                if seen.get("last_value") == last:
                    hashes += [h for h in seen.get("unique_hashes") or [] if h not in hashes]
            entry["last_value"] = last
            entry["unique_hashes"] = hashes

    def _handed_on(self, page: Page) -> Any:
        self.clock.pages, self.clock.has_next_page = page.pages, page.has_next_page
        self.packages.count(_rows(page.item))
        return page.item

    def close(self) -> None:
        close = getattr(self._real, "close", None)
        if close is not None:
            close()


class Direct:
    """Pages read where the extract asks for them."""

    def __init__(self, real: Iterator[Any], read: Any) -> None:
        self._real = real
        self._read = read

    def __iter__(self) -> Direct:
        return self

    def __next__(self) -> Page:
        return self._read(self._real)  # type: ignore[no-any-return]

    def close(self) -> None:
        close = getattr(self._real, "close", None)
        if close is not None:
            close()


@dataclass
class Page:
    """One page as the resource's generator gave it, and its paginator's word after it."""

    item: Any
    pages: int = 0
    has_next_page: bool = True


@dataclass
class PageClock:
    """What the Arrow step asks a paginator (``pages``, ``has_next_page``), as of the page the
    step holds rather than the page being read."""

    pages: int = 0
    has_next_page: bool = True


class ReadAhead:
    """Pages read by a thread of their own, at most ``rows`` records ahead of the extract.

    While the run normalizes and loads a package (DuckDB's work, outside Python's interpreter
    lock) the thread fetches and parses the next package's pages. Only this thread calls the
    resource's generator, one call at a time, from the first page the extract asks for (dlt's
    ``rest_api`` paginating generator reads no dlt context but the resource's incremental, which
    dlt has bound by then, and only as it starts: its request's ``start_param``). An exception it
    raises is raised again where the extract asks for the page, as if read there.
    """

    def __init__(self, real: Iterator[Any], read: Any, rows: int) -> None:
        self._real = real
        self._read = read
        self._limit = max(1, rows)
        self._pages: collections.deque[Page] = collections.deque()
        self._rows = 0
        self._ended = False
        self._error: BaseException | None = None
        self._stop = False
        self._changed = threading.Condition()
        # Started at the first page asked for: dlt binds the resource's incremental after it
        # evaluates the head, and the generator reads it as it starts.
        self._thread = threading.Thread(target=self._run, name="restsync-read-ahead", daemon=True)

    def _run(self) -> None:
        while True:
            with self._changed:
                while self._rows >= self._limit and not self._stop:
                    self._changed.wait()
                if self._stop:
                    return
            try:
                page = self._read(self._real)
            except StopIteration:
                page = None
            except BaseException as exc:  # handed to the extract, which fails with it
                with self._changed:
                    self._error = exc
                    self._changed.notify_all()
                return
            with self._changed:
                if page is None:
                    self._ended = True
                else:
                    self._pages.append(page)
                    self._rows += _rows(page.item)
                self._changed.notify_all()
                if page is None:
                    return

    def __iter__(self) -> ReadAhead:
        return self

    def __next__(self) -> Page:
        if self._thread.ident is None:
            self._thread.start()
        with self._changed:
            while not self._pages and not self._ended and self._error is None:
                self._changed.wait()
            if self._pages:
                page = self._pages.popleft()
                self._rows -= _rows(page.item)
                self._changed.notify_all()
                return page
            if self._error is not None:
                raise self._error
            raise StopIteration

    def close(self) -> None:
        """Stop reading; close the resource's generator once the thread has let go of it."""
        with self._changed:
            self._stop = True
            self._changed.notify_all()
        if self._thread.ident is not None:
            self._thread.join(timeout=30)
        close = getattr(self._real, "close", None)
        if not self._thread.is_alive() and close is not None:
            close()


def _rows(item: Any) -> int:
    return len(item) if isinstance(item, list) else 1
