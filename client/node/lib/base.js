'use strict';
/*
 * What Client and Server share: the pool, the app name, the lookup of the
 * extension's schema and version, and running one statement on a client
 * of the pool with a bound on how long it may take, a cancel for an
 * AbortSignal, and the server's errors mapped to syrpc's error classes.
 *
 * Every call is one statement, sent with the extended protocol and an
 * unnamed statement (node-postgres's default), so it works through
 * pgbouncer in transaction pooling mode; with the setting prepared, a
 * named one instead (see statementName).  A wait checks a client out of
 * the pool for one slice (at most 10 s) and returns it after; no LISTEN.
 */
const crypto = require('crypto');
const net = require('net');
const pg = require('pg');
const errors = require('./errors');

const { BadInputError, CancelledError, ConnectionError, ServerError, TimeoutError } = errors;

/* The longest single wait inside the server, as libsyrpc's SYRPC_WAIT_SLICE_MS. */
const WAIT_SLICE_MS = 10000;
/* How much longer than its own timeout a server-side wait may take before it is cancelled. */
const GRACE_MS = 5000;
const NAME_RE = /^[A-Za-z0-9_.-]+$/;
const NAME_MAX = 63;

/* Hand jsonb and json back as the server's text: we parse it ourselves, exactly. */
const TEXT_TYPES = {
  getTypeParser(oid, format) {
    if (oid === 3802 || oid === 114)
      return (text) => text;
    return pg.types.getTypeParser(oid, format);
  },
};

/*
 * The name of a prepared statement (the setting prepared): node-postgres
 * prepares a named statement once per connection and then runs it by
 * name, so the server parses and analyses it once.  The name derives from
 * the text, so that it stands for the same statement on every connection
 * of a pool (and node-postgres refuses a name reused for another text).
 */
const STATEMENT_PREFIX = 'syrpc_';
function statementName(text) {
  return STATEMENT_PREFIX + crypto.createHash('sha1').update(text).digest('hex').slice(0, 16);
}

/*
 * The server no longer has client's statements (SQLSTATE 26000 after a
 * DISCARD ALL or DEALLOCATE ALL): make node-postgres forget ours, which it
 * otherwise takes as prepared for as long as the connection lives, so that
 * it prepares them again.  False when it keeps no such record (pg.native).
 */
function forgetStatements(client) {
  const parsed = client.connection && client.connection.parsedStatements;
  if (!parsed)
    return false;
  for (const name of Object.keys(parsed))
    if (name.startsWith(STATEMENT_PREFIX))
      delete parsed[name];
  return true;
}

/* A name (app or type) as the server checks it; BadInputError if not. */
function checkName(what, name) {
  if (typeof name !== 'string' || name.length === 0)
    throw new BadInputError(`${what} must be a non-empty string`);
  if (Buffer.byteLength(name) > NAME_MAX)
    throw new BadInputError(`${what} is too long (the limit is ${NAME_MAX} bytes)`, { sqlstate: '42622' });
  if (!NAME_RE.test(name))
    throw new BadInputError(`${what} contains an invalid character`, {
      sqlstate: '22023', hint: 'Use only letters, digits, "_", "." and "-".',
    });
}

/* A timeout in ms: a finite number >= 0, or null/Infinity for no limit; BadInputError if not. */
function checkTimeout(ms, what = 'timeoutMs') {
  if (ms === null || ms === Infinity)
    return null;
  if (typeof ms !== 'number' || !(ms >= 0) || !Number.isFinite(ms))
    throw new BadInputError(`${what} must be a number of milliseconds, 0 or more, or null for no limit (got ${String(ms)})`);
  return ms;
}

function checkResultId(id) {
  if (typeof id !== 'string' || id.length === 0)
    throw new BadInputError('result_id must be a non-empty string');
}

/* A duration in ms for the server (a lease, a delay): a finite number, > 0 (or >= 0 with zeroOk); as seconds. */
function durationSeconds(ms, what, zeroOk = false) {
  if (typeof ms !== 'number' || !Number.isFinite(ms) || !(zeroOk ? ms >= 0 : ms > 0))
    throw new BadInputError(`${what} must be a finite number of milliseconds, ${zeroOk ? '0 or more' : 'more than 0'} (got ${String(ms)})`);
  return ms / 1000;
}

/* ms as seconds for a float8 parameter. */
function seconds(ms) {
  return (Math.max(0, Math.floor(ms)) / 1000).toFixed(3);
}

/* Quote name as an SQL identifier. */
function quoteIdent(name) {
  return `"${name.replace(/"/g, '""')}"`;
}

/*
 * Send a cancel request for client's running statement, as PQcancel does:
 * a new connection to the same server (or pgbouncer, which forwards it)
 * with the backend's key; then, as PQcancel, wait for the other end to
 * close the connection (pgbouncer 1.18 crashes on a cancel connection that
 * the client closes first).  Fire and forget.
 */
function sendCancel(client) {
  if (client.processID == null || client.secretKey == null)
    return;
  const host = client.host || 'localhost';
  const port = client.port || 5432;
  const sock = host.startsWith('/') ? net.connect(`${host}/.s.PGSQL.${port}`) : net.connect(port, host);
  sock.on('error', () => {});
  sock.setTimeout(GRACE_MS, () => sock.destroy());
  sock.on('connect', () => {
    const buf = Buffer.alloc(16);
    buf.writeInt32BE(16, 0);
    buf.writeInt32BE(80877102, 4);
    buf.writeInt32BE(client.processID, 8);
    buf.writeInt32BE(client.secretKey, 12);
    sock.write(buf);
  });
  sock.on('data', () => {});
  sock.on('end', () => sock.end());
  sock.on('close', () => sock.destroy());
}

/*
 * How long a call may wait for a free client of the pool: until its
 * deadline, but at least MIN_ACQUIRE_MS, so that a timeout of 0 still
 * looks once.
 */
const MIN_ACQUIRE_MS = 1000;
function acquireDeadline(start, deadline) {
  return deadline === null ? null : Math.max(deadline, start + MIN_ACQUIRE_MS);
}

function cancelled(signal) {
  return new CancelledError('cancelled', { cause: signal && signal.reason });
}

class Base {
  /*
   * settings: app_name (mandatory); pool (a pg.Pool of your own, which
   * close() leaves open) or dsn (a connection string) and/or any
   * pg.Pool options (host, port, user, password, database, max, ...);
   * timeout: the default timeout in ms of the waiting calls (null: no
   * limit, as the original); prepared: true to prepare each statement
   * once per connection (default false: not behind pgbouncer before 1.21
   * in transaction pooling mode).  Keys of the original's AMQP settings
   * (amq_*) are ignored.
   */
  constructor(settings = {}) {
    if (settings === null || typeof settings !== 'object')
      throw new BadInputError('settings must be an object');
    const { app_name: app, dsn, pool, timeout, waitSliceMs, prepared = false, ...rest } = settings;
    checkName('app_name', app);
    this.app_name = app;
    if (typeof prepared !== 'boolean')
      throw new BadInputError(`prepared must be true or false (got ${String(prepared)})`);
    this._prepared = prepared;
    this.timeout = timeout === undefined ? null : checkTimeout(timeout, 'timeout');
    /* waitSliceMs: a shorter slice than 10 s (tests); never longer */
    this._sliceMs = waitSliceMs === undefined ? WAIT_SLICE_MS
      : Math.min(WAIT_SLICE_MS, Math.max(1, checkTimeout(waitSliceMs, 'waitSliceMs') || WAIT_SLICE_MS));
    if (pool) {
      this.pool = pool;
      this._ownPool = false;
    } else {
      const options = {};
      for (const [k, v] of Object.entries(rest))
        if (!k.startsWith('amq_'))
          options[k] = v;
      if (dsn)
        options.connectionString = dsn;
      this.pool = new pg.Pool(options);
      this._ownPool = true;
      /* an idle client whose connection breaks: the pool drops it; nothing to do */
      this.pool.on('error', () => {});
    }
    this._probe = null;
    this._closed = false;
  }

  /*
   * Look up the extension's schema and version (once; again after a
   * failure).  Resolves when the database is ready for syrpc; the calls do
   * it by themselves, so calling it is optional (the original needed it).
   */
  init() {
    if (this._probe === null) {
      this._probe = this._query(
        "SELECT n.nspname, e.extversion, pg_catalog.current_database() AS db"
        + ' FROM pg_catalog.pg_extension e RIGHT JOIN (SELECT 1) one ON e.extname = \'syrpc\''
        + ' LEFT JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace', [],
        { prepare: false })             /* once per Base: not worth a statement on each connection */
        .then((rows) => {
          const row = rows[0];
          if (!row || row.nspname == null)
            throw new ServerError(`the syrpc extension is not installed in database "${row ? row.db : '?'}"`,
              { hint: 'Run CREATE EXTENSION syrpc in that database.' });
          const [major, minor] = String(row.extversion).split('.').map((x) => parseInt(x, 10));
          const version = (major || 0) * 100 + (minor || 0);
          if (version < 102)
            throw new ServerError(`the syrpc Node.js client needs extension 1.2 or later (the database has ${row.extversion})`,
              { hint: 'Run ALTER EXTENSION syrpc UPDATE.' });
          return { schema: quoteIdent(row.nspname), version, extversion: row.extversion };
        });
      this._probe.catch(() => { this._probe = null; });
    }
    return this._probe.then(() => undefined);
  }

  async _ext() {
    if (this._closed)
      throw new BadInputError(`this ${this.constructor.name} is closed`);
    await this.init();
    return this._probe;
  }

  /*
   * The extension lookup, or ServerError when the database's extension is
   * older than min (major * 100 + minor: 107 for 1.7), naming what needs it.
   */
  async _extAtLeast(min, what) {
    const ext = await this._ext();
    if (ext.version < min)
      throw new ServerError(`${what} needs extension ${Math.floor(min / 100)}.${min % 100} or later (the database has ${ext.extversion})`,
        { hint: 'Run ALTER EXTENSION syrpc UPDATE.' });
    return ext;
  }

  /*
   * A client of the pool, or TimeoutError when deadline (ms since the
   * epoch, or null) passes first, or CancelledError when signal fires
   * first; a client that comes after that goes back to the pool.
   */
  _acquire(deadline, signal) {
    if (signal && signal.aborted)
      return Promise.reject(cancelled(signal));
    const connecting = this.pool.connect();
    if (deadline === null && !signal)
      return connecting.catch((e) => { throw errors.fromPg(e); });
    return new Promise((resolve, reject) => {
      let done = false, timer = null;
      const finish = (fn, arg) => {
        if (done)
          return false;
        done = true;
        if (timer)
          clearTimeout(timer);
        if (signal)
          signal.removeEventListener('abort', onAbort);
        fn(arg);
        return true;
      };
      const onAbort = () => finish(reject, cancelled(signal));
      if (deadline !== null)
        timer = setTimeout(() => finish(reject, new TimeoutError('no free connection in the pool within the timeout')),
          Math.max(0, deadline - Date.now()));
      if (signal)
        signal.addEventListener('abort', onAbort, { once: true });
      connecting.then((client) => { if (!finish(resolve, client)) client.release(); },
        (e) => finish(reject, errors.fromPg(e)));
    });
  }

  /*
   * Run one statement and resolve with its rows (jsonb as text).
   * opts.deadline: for the wait for a pool client; opts.values(ms): the
   * parameters, computed once the client is in hand (ms: what is left
   * until opts.until, the call's own deadline, or null), else params; opts.answerMs: the server must answer
   * within answerMs + GRACE_MS, else the statement is cancelled and the
   * call fails with ConnectionError; opts.signal: an AbortSignal that
   * cancels the statement (CancelledError, unless it completed all the
   * same: then its rows are returned); opts.prepare: false to send it
   * unnamed even with the setting prepared.
   */
  async _query(text, params, opts) {
    const { deadline = null, until = null, signal = null, answerMs = null, values = null, prepare = true } = opts;
    const client = await this._acquire(deadline, signal);
    const onClientError = () => {};
    client.on('error', onClientError);
    let broken = null, overdue = false, aborted = false, cancelSeen = false;
    const timers = [];
    const onAbort = () => { aborted = true; sendCancel(client); };
    try {
      const left = until === null ? null : Math.max(0, until - Date.now());
      const config = { text, values: values ? values(left) : params, types: TEXT_TYPES };
      if (this._prepared && prepare)
        config.name = statementName(text);
      const query = client.query(config);
      if (answerMs !== null) {
        timers.push(setTimeout(() => {
          overdue = true;
          sendCancel(client);
          timers.push(setTimeout(() => {
            broken = new ConnectionError(`the server did not answer within ${answerMs + 2 * GRACE_MS} ms`);
            client.release(broken);         /* ends the connection: the query fails */
          }, GRACE_MS));
        }, answerMs + GRACE_MS));
      }
      if (signal)
        signal.addEventListener('abort', onAbort, { once: true });
      let res;
      try {
        res = await query;
      } catch (e) {
        /*
         * Our statement is gone from the server (26000 at the Bind: nothing
         * ran), node-postgres still takes it as prepared: forget, retry once.
         */
        if (!config.name || !e || e.code !== '26000' || aborted || overdue || broken || !forgetStatements(client))
          throw e;
        res = await client.query(config);
      }
      return res.rows;
    } catch (e) {
      cancelSeen = e && e.code === '57014';
      if (broken)
        throw broken;
      if (overdue) {
        /* cancelled by us: the connection is fine, the server (or a pooler's queue) too slow */
        throw new ConnectionError(`the server did not answer within ${answerMs + GRACE_MS} ms`, {
          cause: e,
          hint: 'Behind pgbouncer, size its pool for the clients that wait at once: each holds a server connection for a wait slice.',
        });
      }
      const err = errors.fromPg(e);
      if (errors.isConnectionLoss(e) || err instanceof ConnectionError) {
        broken = err;
        client.release(e instanceof Error ? e : true);
      }
      if (aborted && err.sqlstate === '57014')
        throw new CancelledError('cancelled', { sqlstate: '57014', cause: signal.reason });
      throw err;
    } finally {
      for (const t of timers)
        clearTimeout(t);
      if (signal)
        signal.removeEventListener('abort', onAbort);
      client.removeListener('error', onClientError);
      /*
       * A cancel we sent that the statement did not end with may still be
       * on its way: it must not hit the next statement on this connection
       * (another call's), so the connection goes.
       */
      if (!broken)
        client.release((aborted || overdue) && !cancelSeen ? true : undefined);
    }
  }

  /*
   * A waiting call in slices: run sql with params and the slice's seconds
   * last, until done(rows) gives a value (not undefined) or timeoutMs has
   * passed (TimeoutError with message).  A slice that ends early (the
   * server ends a wait just before statement_timeout; a wait cancelled by
   * statement_timeout counts as such a slice) is followed by the next.
   */
  async _waitSliced(sql, params, timeoutMs, signal, done, message, props = {}) {
    const start = Date.now();
    const deadline = timeoutMs === null ? null : start + timeoutMs;
    for (;;) {
      let rows = null;
      try {
        rows = await this._query(sql, null, {
          deadline: acquireDeadline(start, deadline), until: deadline, signal, answerMs: this._sliceMs,
          values: (left) => [...params, seconds(left === null ? this._sliceMs : Math.min(left, this._sliceMs))],
        });
      } catch (e) {
        if (e instanceof TimeoutError)
          throw new TimeoutError(message, props);
        if (!errors.isStatementTimeout(e))
          throw e;
      }
      const value = rows ? done(rows) : undefined;
      if (value !== undefined)
        return value;
      if (signal && signal.aborted)
        throw cancelled(signal);
      if (deadline !== null && Date.now() >= deadline)
        throw new TimeoutError(message, props);
    }
  }

  /* The timeout of a waiting call: its argument, or the settings' default. */
  _timeoutOf(ms) {
    return ms === undefined ? this.timeout : checkTimeout(ms);
  }

  /*
   * Close: end the pool if it is ours (a pool you brought stays open).
   * Calls after close() fail.
   */
  async close() {
    if (this._closed)
      return;
    this._closed = true;
    if (this._ownPool)
      await this.pool.end();
  }
}

/* (timeoutMs, options) or (options) as the last arguments of a waiting call. */
function waitArgs(timeoutOrOptions, options) {
  if (timeoutOrOptions !== null && typeof timeoutOrOptions === 'object')
    return { ...timeoutOrOptions };
  return { ...(options || {}), timeoutMs: timeoutOrOptions };
}

module.exports = {
  Base, acquireDeadline, WAIT_SLICE_MS, GRACE_MS, checkName, checkTimeout, checkResultId, durationSeconds, waitArgs, seconds,
};
