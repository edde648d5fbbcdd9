"""What the sync and the async flavours share: settings, argument checks,
and every RPC call as a generator of SQL statements.

An operation (op_*) is a generator that yields Stmt objects and gets back
each statement's rows (lists of text values, None for NULL), or has the
statement's SyrpcError thrown into it; its return value is the call's.  A
driver (_sync.Link, aio's link) runs the statements, so the waiting in
slices, the timeouts and the fallbacks are written once, here, after
libsyrpc (client/c/syrpc.c) which they follow.
"""

import datetime
import difflib
import json
import logging
import math
import os
import re
import time
import uuid
from typing import Any, NamedTuple, Optional, Tuple

from . import errors as E

log = logging.getLogger("syrpc")

# The longest single wait inside the server (libsyrpc's SYRPC_WAIT_SLICE_MS).
WAIT_SLICE = 10.0
# How much longer than its own timeout a server-side wait may take to answer.
GRACE = 5.0
# How long a statement that does not wait may take to answer.
STATEMENT_LIMIT = 30.0
# The serve loop's reconnect backoff (as libsyrpc's serve loop).
BACKOFF_MIN = 0.05
BACKOFF_MAX = 5.0
NAME_MAX = 63
REASON_MAX = 1024
# The oldest extension this client works with: CALL syrpc_call and
# syrpc_put_result_wait_request came with 1.2; syrpc_fail_request with 1.3.
MIN_VERSION = (1, 2)
# Remote errors, cancel, deadlines, leases extended and released, and
# requests that say their attempts and deadline (the batch procedures of
# 1.6 with two more keys) came with 1.7.
V17 = (1, 7)
MESSAGE_MAX = 1024

PROBE_SQL = ("SELECT n.nspname, e.extversion FROM pg_catalog.pg_extension e"
             " JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace"
             " WHERE e.extname = 'syrpc'")


class Stmt(NamedTuple):
    sql: str
    params: Tuple[Optional[str], ...]
    limit: float            # seconds the server may take to answer
    waits: bool = False     # a wait: stop() cancels it (and refuses to start it, unless answers)
    answers: bool = False   # it carries an answer: stop() does not keep it from being sent


class Ctx:
    """What a connection knows about the server: the extension's schema
    (quoted) and version (a tuple; extversion: as the catalog says it), and
    the app."""

    def __init__(self, app, schema, version, extversion=None):
        self.app = app
        self.schema = schema
        self.version = version
        self.extversion = extversion or "%d.%d" % version


def need(ctx, version, what):
    """ExtensionNotInstalled unless the extension is version or later."""
    if ctx.version < version:
        raise E.ExtensionNotInstalled("%s needs extension %d.%d or later (the database has %s)"
                                      % ((what,) + tuple(version) + (ctx.extversion,)),
                                      hint="Run ALTER EXTENSION syrpc UPDATE.")


# ---- settings ----

_TTL_KEYS = (
    # (our name, the original's name or None)
    ("result_ttl", "amq_msg_ttl"),
    ("request_ttl", "amq_ttl"),
    ("lease_time", None),
    ("max_attempts", None),
)


class Config:
    """The settings dict, checked."""

    def __init__(self, settings):
        if not hasattr(settings, "get") or not hasattr(settings, "keys"):
            raise E.SettingsError("settings must be a dict (with at least 'app_name'), not %s"
                                  % type(settings).__name__)
        if "app_name" not in settings:
            near = difflib.get_close_matches("app_name", [str(k) for k in settings.keys()], 1, 0.7)
            raise E.SettingsError(
                "settings has no 'app_name': it is mandatory (the name of the app, the same for "
                "its servers and clients)" + ("; did you mean 'app_name' instead of %r?" % near[0]
                                              if near else ""))
        self.app = check_app(settings["app_name"])
        dsn = settings.get("dsn")
        self.conn_kwargs = {}
        if dsn is None:
            dsn = ""
            for ours, theirs in (("host", "amq_host"), ("user", "amq_user"),
                                 ("password", "amq_password")):
                if settings.get(theirs) is not None:
                    self.conn_kwargs[ours] = str(settings[theirs])
        elif not isinstance(dsn, str):
            raise E.SettingsError("settings['dsn'] must be a string (a libpq conninfo or URI)")
        self.dsn = dsn
        self.timeout = check_timeout(settings.get("timeout"), "settings['timeout']", E.SettingsError)
        self.prepared = settings.get("prepared")
        if self.prepared is None:
            self.prepared = False
        elif not isinstance(self.prepared, bool):
            raise E.SettingsError("settings['prepared'] must be True or False, not %r" % (self.prepared,))
        self.app_settings = {}
        for ours, theirs in _TTL_KEYS:
            key = ours if ours in settings else theirs if theirs and theirs in settings else None
            if key is None or settings[key] is None:
                continue
            value = settings[key]
            if ours == "max_attempts":
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise E.SettingsError("settings[%r] must be a whole number, 1 or more" % key)
            elif (isinstance(value, bool) or not isinstance(value, (int, float))
                  or not math.isfinite(value) or value <= 0):
                raise E.SettingsError("settings[%r] must be a number of seconds, more than 0" % key)
            self.app_settings[ours] = value

    def connect_args(self):
        """conninfo and keyword arguments for psycopg's connect()."""
        import psycopg.conninfo
        kw = dict(self.conn_kwargs)
        try:
            given = psycopg.conninfo.conninfo_to_dict(self.dsn)
        except Exception as exc:  # psycopg.ProgrammingError: a bad conninfo
            raise E.SettingsError("settings['dsn'] is not a valid conninfo: %s" % exc) from None
        if "connect_timeout" not in given and not os.environ.get("PGCONNECT_TIMEOUT"):
            kw["connect_timeout"] = 10
        if "application_name" not in given:
            kw["fallback_application_name"] = "syrpc-python"
        # we read and write text as UTF-8
        kw["client_encoding"] = "UTF8"
        return self.dsn, kw


# ---- checks ----

def check_app(app):
    """The app name, checked as the server does (1..63 bytes of letters, digits, "_.-")."""
    if not isinstance(app, str):
        raise E.SettingsError("app_name must be a string, not %s" % type(app).__name__)
    _check_name("app_name", app, E.SettingsError)
    for i, ch in enumerate(app):
        if not (ch.isascii() and (ch.isalnum() or ch in "_.-")):
            raise E.SettingsError("app_name %r contains an invalid character at position %d" % (app, i + 1),
                                  hint='Use only letters, digits, "_", "." and "-".')
    return app


def _check_name(what, name, cls=E.BadInput):
    n = len(name.encode("utf-8"))
    if n == 0:
        raise cls("%s must not be empty" % what)
    if n > NAME_MAX:
        raise cls("%s is too long (%d bytes; the limit is %d)" % (what, n, NAME_MAX))


def check_type(type_):
    """The request type, stripped of surrounding blanks as the original does."""
    if not isinstance(type_, str):
        raise E.BadInput("type_ must be a string, not %s" % type(type_).__name__)
    type_ = type_.strip()
    _check_name("type_", type_)
    return type_


def check_id(result_id):
    """The result_id as canonical text; InvalidResultId if it is no UUID."""
    if isinstance(result_id, uuid.UUID):
        return str(result_id)
    if isinstance(result_id, str):
        try:
            return str(uuid.UUID(result_id.strip()))
        except ValueError:
            pass
    raise E.InvalidResultId("result_id %r is not a UUID" % (result_id,))


def check_timeout(timeout, what="timeout", cls=E.BadInput):
    """Seconds (a float), or None to wait without limit."""
    if timeout is None:
        return None
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
        raise cls("%s must be a number of seconds or None, not %s" % (what, type(timeout).__name__))
    if math.isnan(timeout) or timeout < 0:
        raise cls("%s must be 0 or more seconds, or None (got %r)" % (what, timeout))
    if math.isinf(timeout):
        return None
    return float(timeout)


def check_reason(reason):
    if not isinstance(reason, str) or not 1 <= len(reason.encode("utf-8")) <= REASON_MAX:
        raise E.BadInput("reason must be a string of 1 to %d bytes" % REASON_MAX)
    return reason


def cut_reason(text, fallback="failed"):
    """text cut to REASON_MAX bytes at a character boundary (never empty:
    fallback when it is)."""
    data = text.encode("utf-8")[:REASON_MAX]
    return data.decode("utf-8", "ignore") or fallback


def check_message(message):
    """A remote error's message: 1 to MESSAGE_MAX bytes, as the server takes it."""
    if not isinstance(message, str) or not 1 <= len(message.encode("utf-8")) <= MESSAGE_MAX:
        raise E.BadInput("message must be a string of 1 to %d bytes" % MESSAGE_MAX)
    return message


def check_deadline(deadline):
    """A request's deadline (an aware datetime) as the text the server
    gets, in UTC; None: no deadline."""
    if deadline is None:
        return None
    if not isinstance(deadline, datetime.datetime):
        raise E.BadInput("deadline must be a datetime.datetime with a time zone, or None, not %s"
                         % type(deadline).__name__)
    if deadline.utcoffset() is None:
        raise E.BadInput("deadline must be a timezone-aware datetime (this one is naive: whose clock it"
                         " means is unknown); e.g. datetime.now(timezone.utc) + timedelta(seconds=30)")
    try:
        return deadline.astimezone(datetime.timezone.utc).isoformat()
    except (OverflowError, ValueError) as exc:
        raise E.BadInput("deadline %r cannot be sent: %s" % (deadline, exc)) from None


def check_seconds(value, what, zero_ok):
    """Seconds (a number, or a datetime.timedelta) as the text the server
    gets: more than 0, or 0 or more when zero_ok."""
    if isinstance(value, datetime.timedelta):
        value = value.total_seconds()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise E.BadInput("%s must be a number of seconds or a datetime.timedelta, not %s"
                         % (what, type(value).__name__))
    if not math.isfinite(value) or value < 0 or (value == 0 and not zero_ok):
        raise E.BadInput("%s must be %s seconds (got %r)" % (what, "0 or more" if zero_ok else "more than 0",
                                                             value))
    return repr(float(value))


_TIMESTAMP = re.compile(r"(\d{4,})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?"
                        r"(?:(Z)|([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?)?$")


def parse_timestamptz(text):
    """A timestamptz as PostgreSQL's JSON has it ("2026-12-02T15:04:05.123+01:00")
    as an aware datetime (in the offset the server gave)."""
    if text == "infinity":
        return datetime.datetime.max.replace(tzinfo=datetime.timezone.utc)
    if text == "-infinity":
        return datetime.datetime.min.replace(tzinfo=datetime.timezone.utc)
    m = _TIMESTAMP.match(text or "")
    try:
        if m is None:
            raise ValueError("not a timestamp")
        y, mo, d, h, mi, sec, frac, z, sign, oh, om, os_ = m.groups()
        offset = datetime.timedelta(hours=int(oh or 0), minutes=int(om or 0), seconds=int(os_ or 0))
        tz = datetime.timezone(-offset if sign == "-" else offset)
        return datetime.datetime(int(y), int(mo), int(d), int(h), int(mi), int(sec),
                                 int((frac or "0").ljust(6, "0")), tzinfo=tz)
    except ValueError as exc:
        raise E.ServerError("cannot read the server's timestamp %r: %s" % (text, exc)) from None


class Request(tuple):
    """A claimed request: the tuple (type_, result_id, data) that the
    original's get_request returned, so ``(type_, result_id, data) =
    server.get_request()`` still works, with attributes beside:

    - type_, result_id (canonical text), data
    - attempts: 1 on its first delivery, 2 on its second, ...; deadline:
      an aware datetime, when it expires (its put's deadline or its app's
      request_ttl, whichever is earlier).  Both None on an extension older
      than 1.7, which does not say them.

    extend_lease(seconds), is_cancelled() and release(delay=0) are the
    Server's calls for this request, on the Server that claimed it (in
    syrpc.aio, coroutines).
    """

    def __new__(cls, type_, result_id, data, attempts=None, deadline=None):
        self = super().__new__(cls, (type_, result_id, data))
        self.attempts = attempts
        self.deadline = deadline
        self._worker = None
        return self

    def __reduce__(self):
        return (Request, (self[0], self[1], self[2], self.attempts, self.deadline))

    type_ = property(lambda self: self[0], doc="the request's type")
    result_id = property(lambda self: self[1], doc="the request's result_id (text)")
    data = property(lambda self: self[2], doc="the request's data")

    def _owner(self):
        if self._worker is None:
            raise E.UsageError("this request was not claimed by a syrpc Server object")
        return self._worker

    def extend_lease(self, seconds):
        """Server.extend_lease(result_id, seconds) for this request's own
        lease (its attempt, so that a later claim's lease is not taken
        for it)."""
        return self._owner().extend_lease(self.result_id, seconds, attempt=self.attempts)

    def is_cancelled(self):
        """Server.is_cancelled(result_id) for this request."""
        return self._owner().is_cancelled(self.result_id)

    def release(self, delay=0):
        """Server.release(result_id, delay) for this request's own lease."""
        return self._owner().release(self.result_id, delay, attempt=self.attempts)


def request_of_json(obj):
    """A Request from an object of the batch procedures' array (1.7: with
    attempts and deadline)."""
    deadline = obj.get("deadline")
    return Request(obj["type"], obj["result_id"], obj["data"], obj.get("attempts"),
                   None if deadline is None else parse_timestamptz(deadline))


def first_request(text):
    """The first Request of a batch procedure's array, or None ([], NULL)."""
    items = loads(text) if text is not None else None
    return request_of_json(items[0]) if items else None


def dumps(data, what="data"):
    try:
        return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(", ", ": "))
    except (TypeError, ValueError, RecursionError) as exc:
        raise E.BadInput("%s cannot be sent as JSON: %s" % (what, exc)) from None


def loads(text):
    return json.loads(text)


def secs(seconds):
    """A slice's timeout as the text the server gets."""
    return "%.3f" % seconds


def slice_of(remaining):
    return WAIT_SLICE if remaining is None or remaining > WAIT_SLICE else max(0.0, remaining)


def fmt_timeout(timeout):
    return ("%g s" % timeout) if timeout is not None else "forever"


def statement_timed_out(exc):
    """The statement was cancelled by statement_timeout (not by a user's cancel)."""
    return (isinstance(exc, E.Cancelled) and exc.sqlstate == "57014"
            and "statement timeout" in exc.message)


def ctx_of_probe(rows, app, database):
    """The Ctx from the probe's rows; ExtensionNotInstalled if it is not there or too old."""
    if len(rows) != 1:
        raise E.ExtensionNotInstalled('the syrpc extension is not installed in database "%s"' % database,
                                      hint="Run CREATE EXTENSION syrpc in that database.")
    schema, extversion = rows[0]
    try:
        version = tuple(int(p) for p in extversion.split(".")[:2])
    except ValueError:
        version = (99, 0)       # not a version we know: assume a newer one
    if version < MIN_VERSION:
        raise E.ExtensionNotInstalled(
            "the syrpc extension in database \"%s\" is version %s; this client needs %d.%d or later"
            % ((database, extversion) + MIN_VERSION), hint="Run ALTER EXTENSION syrpc UPDATE.")
    return Ctx(app, '"' + schema.replace('"', '""') + '"', version, extversion)


# ---- the calls ----

def op_put_request(ctx, type_, text, deadline=None):
    """Queue a request; deadline: check_deadline's text, or None."""
    if deadline is None:
        rows = yield Stmt("SELECT %s.syrpc_put_request($1, $2, $3::pg_catalog.jsonb)" % ctx.schema,
                          (ctx.app, type_, text), STATEMENT_LIMIT)
    else:
        need(ctx, V17, "put_request(..., deadline=...)")
        rows = yield Stmt("SELECT %s.syrpc_put_request($1, $2, $3::pg_catalog.jsonb,"
                          " $4::pg_catalog.timestamptz)" % ctx.schema,
                          (ctx.app, type_, text, deadline), STATEMENT_LIMIT)
    return uuid.UUID(rows[0][0])


def op_cancel(ctx, result_id):
    need(ctx, V17, "cancel(result_id)")
    rows = yield Stmt("SELECT %s.syrpc_cancel($1, $2::pg_catalog.uuid)" % ctx.schema,
                      (ctx.app, result_id), STATEMENT_LIMIT)
    return rows[0][0] == "t"


def _sliced(sql, params, pick, timeout, what):
    """Wait in slices until pick(row) is not None (which it returns), or
    timeout passes (Timeout).  The last parameter is each slice's seconds.
    A slice that ends early (the server ends a wait before
    statement_timeout; one cancelled by it counts the same) waits on until
    the deadline."""
    deadline = None if timeout is None else time.monotonic() + timeout
    remaining = timeout
    while True:
        slice_ = slice_of(remaining)
        try:
            rows = yield Stmt(sql, params + (secs(slice_),), slice_ + GRACE, True)
        except E.Cancelled as exc:
            if not statement_timed_out(exc):
                raise
            rows = None
        value = pick(rows[0]) if rows else None
        if value is not None:
            return value
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise E.Timeout("no %s within %s" % (what, fmt_timeout(timeout)))


def _col(i):
    return lambda row: row if row[i] is not None else None


def op_wait_result(ctx, result_id, timeout):
    row = yield from _sliced(
        "CALL %s.syrpc_wait_result($1, $2::pg_catalog.uuid, $3::pg_catalog.float8)" % ctx.schema,
        (ctx.app, result_id), _col(0), timeout, "result")
    return loads(row[0])


def op_call(ctx, type_, text, timeout):
    """CALL syrpc_call puts the request and waits its first slice; then wait on."""
    deadline = None if timeout is None else time.monotonic() + timeout
    slice_ = slice_of(timeout)
    try:
        rows = yield Stmt("CALL %s.syrpc_call($1, $2, $3::pg_catalog.jsonb, $4::pg_catalog.float8)"
                          % ctx.schema, (ctx.app, type_, text, secs(slice_)), slice_ + GRACE, True)
    except E.Cancelled as exc:
        if statement_timed_out(exc):
            raise E.Timeout("statement_timeout ended the call (its request may be queued)",
                            sqlstate=exc.sqlstate) from None
        raise
    result_id, result = rows[0]
    if result is not None:
        return loads(result)
    remaining = None if deadline is None else deadline - time.monotonic()
    if remaining is not None and remaining <= 0:
        raise E.Timeout("no result within %s" % fmt_timeout(timeout), result_id=result_id)
    try:
        return (yield from op_wait_result(ctx, result_id, remaining))
    except E.Timeout as exc:
        exc.message = "no result within %s" % fmt_timeout(timeout)
        exc.args = (exc.message,)
        exc.result_id = result_id
        raise


def op_wait_request(ctx, timeout):
    """A Request; from 1.7 with attempts and deadline (one batch of 1)."""
    if ctx.version >= V17:
        return (yield from _sliced("CALL %s.syrpc_wait_requests($1, 1, $2::pg_catalog.float8, NULL)"
                                   % ctx.schema, (ctx.app,), lambda row: first_request(row[0]),
                                   timeout, "request"))
    row = yield from _sliced("CALL %s.syrpc_wait_request($1, $2::pg_catalog.float8)" % ctx.schema,
                             (ctx.app,), _col(1), timeout, "request")
    return Request(row[0], row[1], loads(row[2]))


def op_put_result(ctx, result_id, text):
    yield Stmt("SELECT %s.syrpc_put_result($1, $2::pg_catalog.uuid, $3::pg_catalog.jsonb)" % ctx.schema,
               (ctx.app, result_id, text), STATEMENT_LIMIT)


def op_fail_request(ctx, result_id, reason):
    need(ctx, (1, 3), "fail_request")
    yield Stmt("SELECT %s.syrpc_fail_request($1, $2::pg_catalog.uuid, $3)" % ctx.schema,
               (ctx.app, result_id, reason), STATEMENT_LIMIT)


def op_put_error(ctx, result_id, message, detail):
    """Answer with an error; detail: JSON text, or None."""
    need(ctx, V17, "put_error")
    yield Stmt("SELECT %s.syrpc_put_error($1, $2::pg_catalog.uuid, $3, $4::pg_catalog.jsonb)" % ctx.schema,
               (ctx.app, result_id, message, detail), STATEMENT_LIMIT)


def op_is_cancelled(ctx, result_id):
    need(ctx, V17, "is_cancelled")
    rows = yield Stmt("SELECT %s.syrpc_is_cancelled($1, $2::pg_catalog.uuid)" % ctx.schema,
                      (ctx.app, result_id), STATEMENT_LIMIT)
    return rows[0][0] == "t"


def op_extend_lease(ctx, result_id, seconds, attempt=None):
    """The lease's new end, an aware datetime.  attempt: the one the
    request came with, if known (only that lease is extended)."""
    need(ctx, V17, "extend_lease")
    rows = yield Stmt("SELECT pg_catalog.to_jsonb(%s.syrpc_extend_lease($1, $2::pg_catalog.uuid,"
                      " $3::pg_catalog.float8, $4::pg_catalog.int4))" % ctx.schema,
                      (ctx.app, result_id, seconds, str(attempt) if attempt else None), STATEMENT_LIMIT)
    return parse_timestamptz(loads(rows[0][0]))


def op_release(ctx, result_id, delay, attempt=None):
    need(ctx, V17, "release")
    yield Stmt("SELECT %s.syrpc_release($1, $2::pg_catalog.uuid, pg_catalog.make_interval(secs =>"
               " $3::pg_catalog.float8), $4::pg_catalog.int4)" % ctx.schema,
               (ctx.app, result_id, delay, str(attempt) if attempt else None), STATEMENT_LIMIT)


def op_answer_wait(ctx, result_id, text):
    """Answer and wait one slice for the next request: a Request, or None."""
    if ctx.version >= V17:
        stmt = Stmt("CALL %s.syrpc_put_results_wait_requests($1, ARRAY[$2::pg_catalog.uuid],"
                    " ARRAY[$3::pg_catalog.jsonb], 1, $4::pg_catalog.float8, NULL)" % ctx.schema,
                    (ctx.app, result_id, text, secs(WAIT_SLICE)), WAIT_SLICE + GRACE, True, True)
    else:
        stmt = Stmt("CALL %s.syrpc_put_result_wait_request($1, $2::pg_catalog.uuid,"
                    " $3::pg_catalog.jsonb, $4::pg_catalog.float8)" % ctx.schema,
                    (ctx.app, result_id, text, secs(WAIT_SLICE)), WAIT_SLICE + GRACE, True, True)
    try:
        rows = yield stmt
    except E.Cancelled as exc:
        # statement_timeout: if it came before the answer's commit, the
        # request comes back by its lease
        if statement_timed_out(exc):
            return None
        raise
    return _request_of_row(ctx, rows[0])


def _request_of_row(ctx, row):
    if ctx.version >= V17:
        return first_request(row[0])
    type_, result_id, data = row
    return None if result_id is None else Request(type_, result_id, loads(data))


def op_wait_request_raw(ctx):
    """One slice of waiting for a request: a Request, or None."""
    if ctx.version >= V17:
        stmt = Stmt("CALL %s.syrpc_wait_requests($1, 1, $2::pg_catalog.float8, NULL)" % ctx.schema,
                    (ctx.app, secs(WAIT_SLICE)), WAIT_SLICE + GRACE, True)
    else:
        stmt = Stmt("CALL %s.syrpc_wait_request($1, $2::pg_catalog.float8)" % ctx.schema,
                    (ctx.app, secs(WAIT_SLICE)), WAIT_SLICE + GRACE, True)
    try:
        rows = yield stmt
    except E.Cancelled as exc:
        if statement_timed_out(exc):
            return None
        raise
    return _request_of_row(ctx, rows[0])


def op_configure(ctx, wanted):
    """Give the app the settings asked for, if it does not have them.  Only
    the extension's owner may: for anyone else a difference is a warning."""
    cols = ("lease_time", "max_attempts", "result_ttl", "request_ttl")
    try:
        rows = yield Stmt("SELECT pg_catalog.date_part('epoch', lease_time)::float8, max_attempts,"
                          " pg_catalog.date_part('epoch', result_ttl)::float8,"
                          " pg_catalog.date_part('epoch', request_ttl)::float8"
                          " FROM %s.syrpc_apps WHERE app = $1" % ctx.schema, (ctx.app,), STATEMENT_LIMIT)
        have = dict(zip(cols, (float(v) for v in rows[0]))) if rows else {}
        if rows and all(abs(have[k] - float(v)) < 1e-6 for k, v in wanted.items()):
            return
        params = [ctx.app] + [None if wanted.get(k) is None else str(wanted[k]) for k in cols]
        yield Stmt("SELECT %s.syrpc_configure($1, lease_time => $2::pg_catalog.float8 * interval '1 second',"
                   " max_attempts => $3::pg_catalog.int4,"
                   " result_ttl => $4::pg_catalog.float8 * interval '1 second',"
                   " request_ttl => $5::pg_catalog.float8 * interval '1 second')" % ctx.schema,
                   tuple(params), STATEMENT_LIMIT)
    except E.PermissionDenied as exc:
        log.warning("app %s: could not apply the settings %s (%s); only the extension's owner can, with"
                    " syrpc_configure(); the app keeps its settings", ctx.app,
                    ", ".join("%s=%s" % kv for kv in sorted(wanted.items())), exc.message)


# ---- the serve loop's dispatch ----

def error_object(error, type_, reason=None):
    obj = {"error": error, "type": type_}
    if reason is not None:
        obj["reason"] = reason
    return obj


def route_of(routes, type_):
    """(handler, takes_type) for type_, or (None, False)."""
    if type_ in routes:
        return routes[type_], False
    if None in routes:
        return routes[None], True
    return None, False


def check_routes(handlers):
    routes = {}
    for type_, handler in dict(handlers or {}).items():
        if not callable(handler):
            raise E.BadInput("the handler of %r is not callable" % (type_,))
        routes[None if type_ is None else check_type(type_)] = handler
    return routes


def encode_answer(type_, result):
    """(JSON text, None), or (None, reason) if the result cannot be sent."""
    try:
        return dumps(result, "the handler's result"), None
    except E.BadInput as exc:
        return None, cut_reason(exc.message)


def handler_failed(type_, exc):
    log.error("syrpc: the handler of %r raised %s: %s", type_, type(exc).__name__, exc, exc_info=exc)
    return cut_reason("the handler of %s raised %s: %s" % (type_, type(exc).__name__, exc))


def remote_error_of(exc):
    """(message, detail JSON text or None) of the remote error that answers
    a handler's exception (1.7): str(exc) and {"exception": its class's
    name}; a RemoteError the handler raised goes on as it is."""
    name = type(exc).__name__
    if isinstance(exc, E.RemoteError):
        return cut_reason(str(exc.message), name), exc.detail_text
    return cut_reason(str(exc), name), dumps({"exception": name})


def op_handler_error(ctx, result_id, type_, message, detail, reason):
    """Answer a request whose handler raised: with a remote error from 1.7
    (given up with reason if the server refuses it), else given up as
    before 1.7 (op_give_up)."""
    if ctx.version >= V17:
        try:
            yield from op_put_error(ctx, result_id, message, detail)
            return
        except E.BadInput as exc:
            if not answer_refused(exc):
                raise
            reason = cut_reason("the server refused the handler's error: " + exc.message)
    yield from op_give_up(ctx, result_id, type_, reason)


def op_give_up(ctx, result_id, type_, reason):
    """Give up a request with reason (syrpc_fail_request); an extension
    older than 1.3 cannot: answer it with an error object instead."""
    if ctx.version >= (1, 3):
        yield from op_fail_request(ctx, result_id, reason)
    else:
        yield from op_put_result(ctx, result_id, dumps(error_object("request failed", type_, reason)))


def answer_refused(exc):
    """The server refused an answer's data (not JSON, too large, ...)."""
    return isinstance(exc, E.BadInput) and bool(exc.sqlstate) and (
        exc.sqlstate.startswith("22") or exc.sqlstate == "54000")


def check_max_requests(max_requests):
    if max_requests is not None and (isinstance(max_requests, bool) or not isinstance(max_requests, int)
                                     or max_requests < 1):
        raise E.BadInput("max_requests must be a whole number, 1 or more, or None")
    return max_requests


# ---- the serve loop, for both flavours ----

class Run(NamedTuple):
    """Run the operation factory(ctx) on the link: its value, or its error."""
    factory: Any


class Handle(NamedTuple):
    """Call the handler with args (and await its value, in syrpc.aio)."""
    handler: Any
    args: tuple


class Reconnect(NamedTuple):
    """Reconnect with backoff: True, or False once stopped."""
    why: Any


def serve_loop(link, routes, max_requests, worker=None):
    """The serve loop (after libsyrpc's syrpc_serve) as a generator of
    actions, which the flavour's driver carries out.  Returns how many
    requests were answered or given up.

    While a handler runs, link.current is its Request (claimed by worker);
    a call of the worker that answers, fails or releases that request (or
    an extend_lease that finds it cancelled) sets link.settled, and then
    the loop leaves the request alone."""
    served = 0
    req = None
    while not link.stopping and (max_requests is None or served < max_requests):
        if req is None:
            try:
                req = yield Run(op_wait_request_raw)
            except E.Interrupted:
                break
            except E.ConnectionLost as exc:
                if not (yield Reconnect(exc)):
                    break
                continue
            if req is None:
                continue
        current, req = req, None
        current._worker = worker
        type_, result_id, data = current
        handler, takes_type = route_of(routes, type_)
        answer = reason = error = None
        settled = False
        if handler is None:
            answer = dumps(error_object("unknown type", type_))
        else:
            link.current, link.settled = current, False
            try:
                result = yield Handle(handler, (type_, data) if takes_type else (data,))
            except Exception as exc:
                settled = link.settled
                if settled and isinstance(exc, E.RequestCancelled):
                    log.info("syrpc: request %s was cancelled while its handler ran", result_id)
                elif isinstance(exc, E.RemoteError):
                    # an error answer the handler meant: no traceback
                    log.info("syrpc: the handler of %r answered with an error: %s", type_, exc.message)
                    reason = cut_reason("the handler of %s raised RemoteError: %s" % (type_, exc.message))
                    error = remote_error_of(exc)
                else:
                    reason = handler_failed(type_, exc)
                    error = remote_error_of(exc)
            else:
                settled = link.settled
                answer, reason = encode_answer(type_, result)
            finally:
                link.current, link.settled = None, False
        if settled:
            # the handler answered, failed or released its request itself
            served += 1
            continue
        # answer and take the next request, waiting a slice for one (only
        # answer, when it is the last one or we are stopping)
        last = link.stopping or (max_requests is not None and served + 1 >= max_requests)
        try:
            if answer is not None and last:
                yield Run(lambda ctx: op_put_result(ctx, result_id, answer))
            elif answer is not None:
                req = yield Run(lambda ctx: op_answer_wait(ctx, result_id, answer))
            if error is not None:
                yield Run(lambda ctx: op_handler_error(ctx, result_id, type_, error[0], error[1], reason))
            elif reason is not None:
                yield Run(lambda ctx: op_give_up(ctx, result_id, type_, reason))
        except E.Interrupted:
            served += 1
            break
        except E.ConnectionLost as exc:
            # the request comes back by its lease, to us or another worker
            if not (yield Reconnect(exc)):
                break
            continue
        except E.NotInFlight as exc:
            # our lease ran out and another worker answered, or it expired
            log.warning("syrpc: %s", exc.message)
            continue
        except E.BadInput as exc:
            if not answer_refused(exc):
                raise
            reason = cut_reason("the server refused the handler's result: " + exc.message)
            yield Run(lambda ctx: op_give_up(ctx, result_id, type_, reason))
        served += 1
    return served
