"""The ``sql`` ERP: reads the feed columns from the ERP's own database through views a seller writes.

Most Polish ERPs (Subiekt, Optima, enova, Comarch XL) keep their data in SQL
Server or PostgreSQL; the seller (or their IT person) writes one SELECT over
the ERP's tables, usually as a view, returning the feed's columns plus a
change column. The queries live in a TOML file (schema ``erp_sql.toml``) the
option ``queries`` names, so they can be fixed without touching code.

The hub wraps the seller's SELECT in its own query (``SELECT * FROM (...) AS
feed WHERE ... ORDER BY ... LIMIT``), built with SQLAlchemy so each dialect gets
its own paging (``TOP`` on SQL Server). Incremental reads page by the key
(change value, sku, warehouse), so rows sharing one change value are neither
skipped nor read twice, whatever the page size.

With a ``[sales_document]`` (and ``[restock]``) section in the queries file, the same connector
takes the hub's accepted orders (and returned goods) into staging tables the ERP, or a script of
the seller's, imports from (ErpSalesSink). Each document is one transaction on the ERP database:
the section's ``exists`` query first (a document already staged returns its id), else the header
and line INSERTs. The header table's unique constraint on the reference makes it exactly once under
races: a unique violation is "already there" and answered with ``exists``.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Container, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, ClassVar
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo, field_validator
from sqlalchemy import (
    ColumnElement,
    Connection,
    Engine,
    Select,
    Unicode,
    and_,
    bindparam,
    cast,
    create_engine,
    false,
    func,
    literal_column,
    or_,
    select,
    text,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError, NoSuchModuleError, OperationalError

from connectors.erp.documents import check_restock, restock_json, sales_json
from hub.catalog.feed_rules import (
    FeedRules,
    ParsedRow,
    missing_columns,
    normalize_column,
    parse_feed_row,
    parse_row,
    records,
)
from hub.kernel.clock import utcnow
from hub.kernel.errors import PermanentError, RetryableError
from hub.kernel.ports.capability import Capability
from hub.kernel.ports.erp import ErpBatch, FeedRow, RejectedRecord, RestockDocument, SalesDocument
from hub.platform.config import SecretValue
from hub.platform.logs import get_logger
from hub.platform.mappings import register_schema, validate_file
from hub.platform.registry import ConnectorSpec

SNAPSHOT_BATCH = 5000  # rows per batch of snapshot(); changes() takes the spine's limit
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# sort keys the hub adds to every row it reads (the database's own text of sku and warehouse)
_KEY_SKU, _KEY_WAREHOUSE = "hub_key_sku", "hub_key_warehouse"
# a named parameter of a statement (``:name``; not a PostgreSQL cast ``::type``, not an escaped ``\:``)
_PARAMETER = re.compile(r"(?<![:\w\\]):([A-Za-z_]\w*)(?![:\w])")
_LOCAL_ZONE = ZoneInfo("Europe/Warsaw")  # issued_date: the document's date in Poland


def _statement_words(sql: str) -> list[str]:
    return re.sub(r"--[^\n]*|/\*.*?\*/", " ", sql, flags=re.S).split()


def parameters(sql: str) -> set[str]:
    return set(_PARAMETER.findall(re.sub(r"--[^\n]*|/\*.*?\*/|'[^']*'", " ", sql, flags=re.S)))


class _Staging(BaseModel):
    """A staging section: ``exists`` (one SELECT by :reference), ``header`` and ``lines`` (INSERTs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    HEADER: ClassVar[frozenset[str]] = frozenset()
    LINES: ClassVar[frozenset[str]] = frozenset()

    # returns one row for a staged document, its first column the id the hub records; no row: not staged
    exists: str
    header: str  # one INSERT of the document's header row
    lines: str  # one INSERT, run once per line

    @field_validator("exists")
    @classmethod
    def _select(cls, value: str) -> str:
        words = _statement_words(value)
        if not words or words[0].lower() != "select":
            raise ValueError("must be one SELECT statement")
        if parameters(value) != {"reference"}:
            raise ValueError("must select by :reference and use no other parameter")
        return value.strip().rstrip(";").strip()

    @field_validator("header", "lines")
    @classmethod
    def _insert(cls, value: str, info: ValidationInfo) -> str:
        words = _statement_words(value)
        if not words or words[0].lower() != "insert":
            raise ValueError("must be one INSERT statement")
        used = parameters(value)
        if info.field_name == "header" and "reference" not in used:
            raise ValueError("must insert :reference (the unique key of the staged document)")
        allowed = cls.HEADER if info.field_name == "header" else cls.LINES
        unknown = sorted(used - allowed)
        if unknown:
            raise ValueError(f"unknown parameter {', '.join(':' + u for u in unknown)} "
                             f"(known: {', '.join(':' + a for a in sorted(allowed))})")
        return value.strip().rstrip(";").strip()


class SalesDocumentStaging(_Staging):
    """``[sales_document]``: where accepted orders go."""

    HEADER = frozenset({
        "reference", "kind", "issued_at", "issued_date", "channel", "order_id", "order_revision", "buyer_email",
        "buyer_login", "nip", "company", "invoice_street", "invoice_postal_code", "invoice_city",
        "invoice_country", "delivery_method", "delivery_name", "delivery_street", "delivery_postal_code",
        "delivery_city", "delivery_country", "delivery_phone", "pickup_point_id", "total_net", "total_vat",
        "total_gross", "currency", "payment_status", "payment_method", "payment_amount", "cod", "cod_amount",
        "line_count", "document"})
    LINES = frozenset({
        "reference", "line_no", "sku", "name", "quantity", "unit_price_gross", "vat_rate", "net", "vat",
        "gross", "offer_id", "line_id"})


class RestockStaging(_Staging):
    """``[restock]``: where returned goods go back into stock."""

    HEADER = frozenset({"reference", "order_reference", "warehouse", "created_at", "line_count", "document"})
    LINES = frozenset({"reference", "line_no", "sku", "quantity", "amount_gross", "offer_id", "line_id"})


class ErpSqlQueries(BaseModel):
    """``erp_sql.toml``: the seller's SELECTs over the ERP database."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # the column that grows whenever a row changes: a rowversion cast to bigint, an updated_at
    change_column: str
    # every feed row with its change column; the hub adds the WHERE, ORDER BY and LIMIT
    changes: str
    # the whole catalogue; defaults to `changes` (the change column is not needed here)
    snapshot: str | None = None
    # staging tables for sales documents and restocks; unset: the connector takes none
    sales_document: SalesDocumentStaging | None = None
    restock: RestockStaging | None = None

    @field_validator("change_column")
    @classmethod
    def _identifier(cls, value: str) -> str:
        if not _IDENTIFIER.fullmatch(value):
            raise ValueError("must be a plain column name (letters, digits, _), as the query names it")
        return value

    @field_validator("changes", "snapshot")
    @classmethod
    def _one_select(cls, value: str | None) -> str | None:
        if value is None:
            return None
        body = value.strip().rstrip(";").strip()
        words = re.sub(r"--[^\n]*|/\*.*?\*/", " ", body, flags=re.S).split()
        if not words or words[0].lower() != "select":
            raise ValueError("must be one SELECT statement (no WITH, no ORDER BY needed: the hub adds its own)")
        return body


register_schema("erp_sql.toml", ErpSqlQueries)


@dataclass(frozen=True)
class QueriesFile:
    path: Path
    queries: ErpSqlQueries


def load_queries(value: Any) -> QueriesFile:
    """The option ``queries``: a path, read and validated when the config is (problems name the file,
    the key and the value)."""
    if isinstance(value, QueriesFile):
        return value
    if not isinstance(value, str | Path):
        raise ValueError("expected the path of an erp_sql.toml file")
    path = Path(value)
    data, problems = validate_file(path, ErpSqlQueries)
    if not isinstance(data, ErpSqlQueries):
        raise ValueError("; ".join(problems))
    return QueriesFile(path, data)


class SqlOptions(BaseModel):
    """``[connectors.NAME]`` keys of a ``kind = "sql"`` ERP."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str  # any SQLAlchemy URL: mssql+pyodbc://..., postgresql://..., sqlite:///...
    password: SecretValue | None = None  # kept out of the URL and out of logs
    queries: Annotated[QueriesFile, PlainValidator(load_queries)]  # the erp_sql.toml with the SELECTs

    @field_validator("url")
    @classmethod
    def _sqlalchemy_url(cls, value: str) -> str:
        try:
            url = _engine_url(value)
        except ArgumentError:
            raise ValueError("not a SQLAlchemy database URL (e.g. mssql+pyodbc://user@host/db?driver=...)") from None
        _check_driver(url)
        return value


# pip packages whose import name differs from the package's
_DRIVER_PACKAGES = {"MySQLdb": "mysqlclient"}


def _check_driver(url: URL) -> None:
    """ValueError unless SQLAlchemy knows the URL's database and its driver can be imported here
    (without connecting: the database may be down while the config is checked)."""
    try:
        dialect = url.get_dialect()
    except NoSuchModuleError:
        raise ValueError(f"unknown database kind {url.drivername!r}: SQLAlchemy has no such dialect "
                         "(e.g. mssql+pyodbc, postgresql, sqlite)") from None
    except Exception as exc:  # a third-party dialect that fails to load
        raise ValueError(f"the database dialect {url.drivername!r} cannot be loaded: "
                         f"{type(exc).__name__}: {_first_line(exc)}") from None
    driver = url.get_driver_name()
    # as create_engine finds the driver: import_dbapi(), or the dbapi() of a dialect written for SQLAlchemy 1
    legacy = getattr(dialect, "dbapi", None)
    import_dbapi = legacy if "import_dbapi" not in vars(dialect) and inspect.ismethod(legacy) else dialect.import_dbapi
    try:
        import_dbapi()
    except ModuleNotFoundError as exc:
        module = (exc.name or driver).partition(".")[0]
        package = _DRIVER_PACKAGES.get(module, module)
        raise ValueError(f"the database driver {module} is not installed: pip install {package} "
                         "(or use a URL whose driver is)") from None
    except Exception as exc:  # installed but broken, e.g. pyodbc without the unixODBC library
        raise ValueError(f"the database driver {driver} cannot be loaded: "
                         f"{type(exc).__name__}: {_first_line(exc)}") from None


class _Key:
    """Where an incremental read stopped: the last row's change value (typed, so it binds back as
    the column's own type), sku and warehouse. Serialized as a JSON list."""

    _TAGS: dict[type, str] = {bool: "", int: "int", Decimal: "dec", datetime: "dt", date: "date", str: "str",
                              bytes: "hex"}

    def __init__(self, value: Any, sku: str | None, warehouse: str | None):
        self.value, self.sku, self.warehouse = value, sku, warehouse

    def text(self) -> str:
        tag = self._TAGS.get(type(self.value), "")
        if not tag:
            raise PermanentError(f"the change column holds {type(self.value).__name__} values; "
                                 "cast it to an integer or a timestamp in the query")
        shown = self.value.hex() if tag == "hex" else (
            self.value.isoformat() if tag in ("dt", "date") else str(self.value))
        return json.dumps([tag, shown, self.sku, self.warehouse], ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def parse(cls, cursor: str | None) -> _Key | None:
        if not cursor:
            return None
        try:
            tag, shown, sku, warehouse = json.loads(cursor)
            value: Any = {
                "int": int, "dec": Decimal, "dt": datetime.fromisoformat, "date": date.fromisoformat,
                "str": str, "hex": bytes.fromhex,
            }[tag](shown)
        except (ValueError, TypeError, KeyError, ArithmeticError):
            return None
        return cls(value, sku, warehouse)


def _after(key: _Key, change: ColumnElement[Any], sku: ColumnElement[Any],
           warehouse: ColumnElement[Any] | None) -> ColumnElement[bool]:
    """Rows after ``key`` in (change, sku, warehouse) order, written out so every database takes it
    (SQL Server has no row-value comparison); ``change >= value`` leads so an index can serve it."""
    value = bindparam("change_value", key.value)
    if key.sku is None:  # from a snapshot: every row changed since it began, ties included
        return change >= value
    tie = sku > bindparam("key_sku", key.sku)
    if warehouse is not None:
        tie = or_(tie, and_(sku == bindparam("key_sku", key.sku),
                            warehouse > bindparam("key_warehouse", key.warehouse or "")))
    return and_(change >= value, or_(change > value, tie))


class SqlErp:
    """ErpSource over the seller's SELECTs. One engine per connector, created lazily by SQLAlchemy."""

    def __init__(self, name: str, options: SqlOptions, *, log: Any | None = None,
                 engine: Engine | None = None) -> None:
        self.name = name
        self.options = options
        self.queries = options.queries.queries
        self.queries_path = options.queries.path
        self.log = log if log is not None else get_logger("connectors.sql").bind(connector=name)
        self.engine = engine if engine is not None else _engine(options)
        self._columns: dict[str, list[str]] = {}

    # --- the port -----------------------------------------------------------------

    def changes(self, cursor: str | None, *, limit: int, known: Container[int] = frozenset()) -> ErpBatch:
        """Rows after ``cursor`` in (change, sku, warehouse) order, at most ``limit``;
        ``complete=False`` while more remain."""
        limit = max(1, limit)
        key = _Key.parse(cursor)
        if cursor and key is None:
            self.log.warning("unreadable sql cursor, reading every row again", cursor=cursor)
        with self._connection("changes") as conn:
            stmt, change = self._statement(conn, "changes", ordered_by_change=True)
            stmt = stmt.where(change.is_not(None))
            if key is not None:
                stmt = stmt.where(_after(key, change, *self._key_columns("changes")))
            rows = [dict(r) for r in conn.execute(stmt.limit(limit + 1)).mappings()]
        more = len(rows) > limit
        rows = rows[:limit]
        if not rows:
            return ErpBatch(products=(), stock=(), prices=(), rejected=(), cursor_after=cursor)
        last = rows[-1]
        cursor_after = _Key(_get(last, self.queries.change_column), last[_KEY_SKU], last.get(_KEY_WAREHOUSE)).text()
        parsed, rejected = self._parse(rows, "changes", FeedRules())
        products, stock, prices = records(parsed)
        return ErpBatch(products=products, stock=stock, prices=prices, rejected=rejected,
                        cursor_after=cursor_after, complete=not more)

    def snapshot(self, *, known: Container[int] = frozenset()) -> Iterator[ErpBatch]:
        """The whole catalogue from the snapshot query, streamed in parts of rows valid on their own
        (the rules across rows are the hub's, over the whole read); ``known`` is not used: a view's rows
        carry no fingerprint.

        The cursor of every part is the largest change value *before* the snapshot began, so
        the incremental reads that follow repeat what changed while it ran rather than miss it.
        """
        name = "snapshot" if self.queries.snapshot else "changes"
        with self._connection(name) as conn:
            cursor = self._start_cursor(conn)
            stmt, _ = self._statement(conn, name, ordered_by_change=False)
            result = conn.execution_options(stream_results=True, yield_per=SNAPSHOT_BATCH).execute(stmt).mappings()
            pending: ErpBatch | None = None
            position = 0
            for part in result.partitions(SNAPSHOT_BATCH):
                if pending is not None:
                    yield pending
                rows: list[FeedRow] = []
                rejected: list[RejectedRecord] = []
                for row in part:
                    parsed = parse_feed_row(row, erp=self.name, source=self._source(row, name), position=position,
                                            fingerprint=None)
                    if isinstance(parsed, FeedRow):
                        rows.append(parsed)
                        position += 1
                    else:
                        rejected.extend(parsed)
                pending = ErpBatch(products=(), stock=(), prices=(), rejected=rejected, cursor_after=cursor,
                                   complete=False, snapshot=True, rows=rows)
        if pending is None:  # an empty view is a broken view, never "the seller sells nothing"
            yield ErpBatch(products=(), stock=(), prices=(), cursor_after=cursor, rejected=[RejectedRecord(
                f"{self.queries_path.name}:{name}", None, name, "",
                "the snapshot query returned no rows; ignored so that it cannot zero the catalogue")])
            return
        yield ErpBatch(products=(), stock=(), prices=(), rejected=pending.rejected, cursor_after=cursor,
                       complete=True, snapshot=True, rows=pending.rows)

    def close(self) -> None:
        self.engine.dispose()

    # --- the sales sink (ErpSalesSink) ------------------------------------------------

    @property
    def capabilities(self) -> frozenset[Capability]:
        """What this instance does as configured: sales documents and restocks only with their sections."""
        caps = set(_CAPABILITIES)
        if self.queries.sales_document is not None:
            caps.add(Capability.ERP_SALES_DOCUMENTS)
        if self.queries.restock is not None:
            caps.add(Capability.ERP_RESTOCK)
        return frozenset(caps)

    def post_sales_document(self, document: SalesDocument) -> str:
        """Stage the document (once per reference); its id is the first column of ``exists``."""
        staging = self.queries.sales_document
        if staging is None:
            raise PermanentError(f"ERP connector {self.name!r} takes no sales documents: add a [sales_document] "
                                 f"section to {self.queries_path} (start from examples/erp_sql.toml)")
        order, buyer, payment = document.order, document.buyer, document.order.payment
        when = document.issued_at
        invoice_address = buyer.address if buyer else None
        delivery = order.delivery_address
        header = {
            "reference": document.reference, "kind": document.kind, "issued_at": when,
            "issued_date": when.astimezone(_LOCAL_ZONE).date(), "channel": order.channel_account,
            "order_id": order.external_id, "order_revision": order.revision, "buyer_email": order.buyer_email,
            "buyer_login": order.buyer_login,
            "nip": (buyer.nip or None) if buyer else None,
            "company": buyer.company if buyer else None,
            "invoice_street": invoice_address.street if invoice_address else None,
            "invoice_postal_code": invoice_address.postal_code if invoice_address else None,
            "invoice_city": invoice_address.city if invoice_address else None,
            "invoice_country": invoice_address.country if invoice_address else None,
            "delivery_method": order.delivery_method,
            "delivery_name": delivery.name if delivery else None,
            "delivery_street": delivery.street if delivery else None,
            "delivery_postal_code": delivery.postal_code if delivery else None,
            "delivery_city": delivery.city if delivery else None,
            "delivery_country": delivery.country if delivery else None,
            "delivery_phone": delivery.phone if delivery else None,
            "pickup_point_id": order.pickup_point.id if order.pickup_point else None,
            "total_net": document.net, "total_vat": document.vat, "total_gross": document.gross,
            "currency": order.currency, "payment_status": payment.status, "payment_method": payment.method,
            "payment_amount": payment.amount, "cod": payment.cash_on_delivery,
            "cod_amount": payment.amount if payment.cash_on_delivery else None,
            "line_count": len(document.lines),
            "document": json.dumps(sales_json(document), ensure_ascii=False, separators=(",", ":")),
        }
        lines = [{
            "reference": document.reference, "line_no": line.line_no, "sku": line.sku, "name": line.name,
            "quantity": line.quantity, "unit_price_gross": line.unit_price_gross, "vat_rate": line.vat_rate,
            "net": line.net, "vat": line.vat, "gross": line.gross, "offer_id": line.offer_id, "line_id": line.line_id,
        } for line in document.lines]
        return self._stage("sales_document", staging, document.reference, header, lines)

    def cancel_sales_document(self, reference: str, reason: str) -> str:
        """Staging tables have no cancellation section yet: the job goes dead with this message, in
        `hub status`, for the operator to reverse the sale in the ERP."""
        raise PermanentError(f"ERP connector {self.name!r} cannot stage cancellations: reverse the sale of "
                             f"{reference!r} in the ERP by hand ({reason})")

    def restock(self, document: RestockDocument) -> str:
        staging = self.queries.restock
        if staging is None:
            raise PermanentError(f"ERP connector {self.name!r} takes no restocks: add a [restock] section to "
                                 f"{self.queries_path} (start from examples/erp_sql.toml)")
        check_restock(document)
        header = {
            "reference": document.reference, "order_reference": document.order_reference,
            "warehouse": document.warehouse, "created_at": utcnow(), "line_count": len(document.lines),
            "document": json.dumps(restock_json(document), ensure_ascii=False, separators=(",", ":")),
        }
        lines = [{
            "reference": document.reference, "line_no": number, "sku": line.sku, "quantity": line.quantity,
            "amount_gross": line.amount_gross, "offer_id": line.offer_id, "line_id": line.line_id,
        } for number, line in enumerate(document.lines, 1)]
        return self._stage("restock", staging, document.reference, header, lines)

    def _stage(self, section: str, staging: _Staging, reference: str, header: dict[str, Any],
               lines: list[dict[str, Any]]) -> str:
        """One transaction: the staged document's id, or the header and lines inserted. A unique
        violation (a concurrent post of the same reference won) is answered with ``exists``."""
        bound_header = self._bind(staging.header, header)
        bound_lines = [self._bind(staging.lines, line) for line in lines]
        try:
            with self._connection(section, write=True) as conn:
                found = self._exists(conn, staging, reference)
                if found is not None:
                    self.log.info("erp document already staged", section=section, reference=reference, erp_id=found)
                    return found
                conn.execute(text(staging.header), bound_header)
                if bound_lines:
                    conn.execute(text(staging.lines), bound_lines)
                found = self._exists(conn, staging, reference)
                if found is None:  # rolls the inserts back
                    raise PermanentError(f"{self.queries_path}: {section}: the exists query does not find the "
                                         f"document the header INSERT staged ({reference!r})")
        except _Conflict as conflict:
            with self._connection(section, write=True) as conn:
                found = self._exists(conn, staging, reference)
            if found is None:
                raise PermanentError(f"{self.queries_path}: {section}: the ERP database refused the document "
                                     f"{reference!r}: {conflict}") from None
            self.log.info("erp document staged by a concurrent post", section=section, reference=reference)
            return found
        self.log.info("erp document staged", section=section, reference=reference, erp_id=found)
        return found

    def _exists(self, conn: Connection, staging: _Staging, reference: str) -> str | None:
        row = conn.execute(text(staging.exists), {"reference": reference}).first()
        if row is None:
            return None
        return reference if row[0] is None else str(row[0])

    def _bind(self, sql: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """The statement's parameters. SQLite's driver takes no Decimal (and has only deprecated
        adapters for dates), so there money goes as exact text and times as ISO 8601 text."""
        used = {k: v for k, v in values.items() if k in parameters(sql)}
        if self.engine.dialect.name != "sqlite":
            return used
        return {k: str(v) if isinstance(v, Decimal) else v.isoformat() if isinstance(v, date) else v
                for k, v in used.items()}

    # --- queries ----------------------------------------------------------------------

    @contextmanager
    def _connection(self, query: str, *, write: bool = False) -> Iterator[Connection]:
        """A connection (``write``: in a read-write transaction, committed when the block ends);
        database errors become the queue's retryable / permanent errors, naming the queries file
        and key (never the URL, which may carry a password). A constraint violation of a write is a
        _Conflict."""
        where = f"{self.queries_path}: {query}"
        try:
            with self.engine.connect() as conn:
                if not write:
                    yield conn
                    return
                with conn.begin():
                    if conn.dialect.name == "postgresql":  # the engine's default is read-only
                        conn.execute(text("SET TRANSACTION READ WRITE"))
                    yield conn
        except IntegrityError as exc:
            if not write:
                raise PermanentError(f"{where}: the ERP database refused the query: {_first_line(exc.orig)}") from None
            raise _Conflict(_first_line(exc.orig)) from None
        except OperationalError as exc:  # unreachable server, timeouts, locks; SQLite: also SQL errors
            self._columns.clear()
            raise RetryableError(f"ERP database ({where}): {_first_line(exc.orig)}") from None
        except DBAPIError as exc:
            self._columns.clear()
            if exc.connection_invalidated:
                raise RetryableError(f"ERP database ({where}): {_first_line(exc.orig)}") from None
            raise PermanentError(f"{where}: the ERP database refused the query: {_first_line(exc.orig)}") from None

    def _sql(self, query: str) -> str:
        sql = self.queries.snapshot if query == "snapshot" else self.queries.changes
        assert sql is not None
        return sql

    def _feed(self, query: str) -> Any:
        # the line break ends a trailing "-- comment" before the hub's closing parenthesis
        return text(self._sql(query) + "\n").columns().subquery("feed")

    def _result_columns(self, conn: Connection, query: str) -> list[str]:
        """The query's column names (normalized), read once with a query that returns no rows."""
        if query not in self._columns:
            probe = conn.execute(select(literal_column("*")).select_from(self._feed(query)).where(false()))
            returned = probe.keys()
            probe.close()
            names = [normalize_column(k) for k in returned]
            missing = missing_columns(names)
            if query == "changes" and self.queries.change_column.lower() not in names:
                missing.append(self.queries.change_column)
            if missing:
                raise PermanentError(f"{self.queries_path}: {query}: the query returns no column "
                                     f"{', '.join(missing)} (it returns {', '.join(names) or 'nothing'})")
            self._columns[query] = names
        return self._columns[query]

    def _key_columns(self, query: str) -> tuple[ColumnElement[Any], ColumnElement[Any] | None]:
        """sku and warehouse as text (an ERP may key them by number), NULL as ''."""
        has_warehouse = "warehouse" in self._columns[query]
        sku = func.coalesce(cast(literal_column("sku"), Unicode), literal_column("''"))
        warehouse = func.coalesce(cast(literal_column("warehouse"), Unicode), literal_column("''"))
        return sku, (warehouse if has_warehouse else None)

    def _statement(self, conn: Connection, query: str, *, ordered_by_change: bool) -> tuple[Select[Any], Any]:
        self._result_columns(conn, query)
        sku, warehouse = self._key_columns(query)
        change = literal_column(self.queries.change_column)
        keys = [sku.label(_KEY_SKU)] + ([warehouse.label(_KEY_WAREHOUSE)] if warehouse is not None else [])
        order = ([change] if ordered_by_change else []) + [sku] + ([warehouse] if warehouse is not None else [])
        return select(literal_column("*"), *keys).select_from(self._feed(query)).order_by(*order), change

    def _start_cursor(self, conn: Connection) -> str | None:
        self._result_columns(conn, "changes")
        change = literal_column(self.queries.change_column)
        top = conn.execute(select(func.max(change)).select_from(self._feed("changes"))).scalar()
        return None if top is None else _Key(top, None, None).text()

    def _source(self, row: Mapping[str, Any], query: str) -> str:
        return (f"{self.queries_path.name}:{query} sku={row.get(_KEY_SKU)!r}"
                + (f" warehouse={row[_KEY_WAREHOUSE]!r}" if _KEY_WAREHOUSE in row else ""))

    def _parse(self, rows: Sequence[Mapping[str, Any]], query: str,
               rules: FeedRules) -> tuple[list[ParsedRow], list[RejectedRecord]]:
        parsed: list[ParsedRow] = []
        rejected: list[RejectedRecord] = []
        for row in rows:
            result = parse_row(row, erp=self.name, source=self._source(row, query))
            if isinstance(result, ParsedRow):
                result_rejects = rules.check(result)
                if not result_rejects:
                    parsed.append(result)
                rejected.extend(result_rejects)
            else:
                rejected.extend(result)
        return parsed, rejected


class _Conflict(Exception):
    """A write broke a constraint (most likely the reference's unique one: a concurrent post won)."""


def _engine_url(value: str) -> URL:
    """The option ``url`` as the engine takes it (ArgumentError if it is not a URL)."""
    url = make_url(value)
    if url.drivername in ("postgresql", "postgres"):
        url = url.set(drivername="postgresql+psycopg")  # the driver the hub ships, as for its own database
    return url


def _engine(options: SqlOptions) -> Engine:
    url = _engine_url(options.url)
    if options.password is not None:
        url = url.set(password=options.password.get())
    kwargs: dict[str, Any] = {"pool_pre_ping": True}
    if url.get_backend_name() == "postgresql":
        # the hub reads the ERP: a slip in a query must not be able to change it; only the staging
        # transactions of sales documents and restocks are read-write
        kwargs["connect_args"] = {"options": "-c default_transaction_read_only=on"}
    return create_engine(url, **kwargs)


def _get(row: Mapping[str, Any], column: str) -> Any:
    """A column by name as the query spelt it, or in another case (databases differ in folding)."""
    if column in row:
        return row[column]
    return next(v for k, v in row.items() if k.lower() == column.lower())


def _first_line(error: BaseException | None) -> str:
    return str(error).strip().splitlines()[0] if error is not None and str(error).strip() else "error"


def _factory(name: str, options: SqlOptions, services: Any) -> SqlErp:
    return SqlErp(name, options, log=getattr(services, "log", None))


_CAPABILITIES = frozenset({Capability.ERP_INCREMENTAL, Capability.ERP_SNAPSHOT})

# The kind's capabilities include what staging sections enable; an instance's own ``capabilities``
# say whether its queries file has them.
SPEC = ConnectorSpec(
    kind="sql", role="erp",
    description="ERP database read through the seller's SELECTs (views in Subiekt's, Optima's... own database); "
                "sales documents into staging tables",
    capabilities=_CAPABILITIES | {Capability.ERP_SALES_DOCUMENTS, Capability.ERP_RESTOCK},
    factory=_factory, options_model=SqlOptions,
)
