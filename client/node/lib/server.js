'use strict';
/*
 * The worker's side: get a request (a lease), put its result, or give it
 * up; and serve(), the loop that dispatches requests to handlers by type,
 * as libsyrpc's syrpc_serve (client/c/serve.c).
 */
const { Base, checkResultId, checkName, waitArgs, seconds } = require('./base');
const { encode, decode } = require('./json');
const errors = require('./errors');

const { BadInputError, CancelledError, ConnectionError, InexactNumberError, NotInFlightError, ServerError } = errors;

const REASON_MAX = 1024;
const BACKOFF_MIN_MS = 50;
const BACKOFF_MAX_MS = 5000;

/* s cut to at most max bytes of UTF-8, at a character boundary. */
function cutBytes(s, max) {
  if (Buffer.byteLength(s) <= max)
    return s;
  let out = s.slice(0, max);
  while (Buffer.byteLength(out) > max)
    out = out.slice(0, -1);
  if (/[\uD800-\uDBFF]$/.test(out))
    out = out.slice(0, -1);
  return out;
}

function reasonOf(prefix, text) {
  return cutBytes(`${prefix}${text}`, REASON_MAX);
}

/* Sleep ms, or less if signal fires. */
function nap(ms, signal) {
  return new Promise((resolve) => {
    if (signal.aborted)
      return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

class Server extends Base {
  constructor(settings) {
    super(settings);
    this._serving = null;
  }

  /* The request of a row (type, result_id, data as text); InexactNumberError if raw is off and data would change. */
  _requestOf(row, raw) {
    const req = { result_id: row.result_id, type: row.type, data: row.data };
    if (!raw)
      req.data = decode(row.data, 'request data',
        { resultId: row.result_id, request: { result_id: row.result_id, type: row.type, text: row.data } });
    return req;
  }

  /*
   * Wait up to timeoutMs (null: no limit; default: the settings' timeout)
   * for a request and claim it: resolves with {result_id, type, data}.
   * The claim is a lease: answer it with putResult (or give it up with
   * failRequest) before the app's lease_time, else it is handed out again.
   * options: raw (data as the server's JSON text), signal.  Data that a
   * JavaScript value cannot hold exactly: InexactNumberError, whose
   * `request` has the result_id, type and text; the request is claimed.
   */
  async getRequest(timeoutMs, options) {
    const o = waitArgs(timeoutMs, options);
    const timeout = this._timeoutOf(o.timeoutMs);
    const { schema } = await this._ext();
    const row = await this._waitSliced(
      `CALL ${schema}.syrpc_wait_request($1, $2::pg_catalog.float8)`,
      [this.app_name], timeout, o.signal || null,
      (rows) => (rows[0] && rows[0].result_id != null ? rows[0] : undefined),
      `no request within ${timeout} ms`);
    return this._requestOf(row, o.raw);
  }

  async _putResultText(resultId, text) {
    const { schema } = await this._ext();
    await this._query(`SELECT ${schema}.syrpc_put_result($1, $2::pg_catalog.uuid, $3::pg_catalog.jsonb)`,
      [this.app_name, resultId, text], {});
  }

  /* Answer a claimed request; wakes its caller. */
  async putResult(resultId, data) {
    checkResultId(resultId);
    await this._putResultText(resultId, encode(data, 'result'));
  }

  /*
   * Give up a claimed request (extension 1.3): its caller gets
   * RequestFailedError (SY001) with "request ID failed: REASON", and no
   * worker gets it again.  reason: 1 to 1024 bytes.
   */
  async failRequest(resultId, reason) {
    checkResultId(resultId);
    if (typeof reason !== 'string' || reason.length === 0 || Buffer.byteLength(reason) > REASON_MAX)
      throw new BadInputError(`reason must be a string of 1 to ${REASON_MAX} bytes`);
    const { schema, version, extversion } = await this._ext();
    if (version < 103)
      throw new ServerError(`failRequest needs extension 1.3 or later (the database has ${extversion})`,
        { hint: 'Run ALTER EXTENSION syrpc UPDATE.' });
    await this._query(`SELECT ${schema}.syrpc_fail_request($1, $2::pg_catalog.uuid, $3)`,
      [this.app_name, resultId, reason], {});
  }

  /* Answer and claim the next request without waiting (one statement); the next request's row or null. */
  async _putResultGetRequest(resultId, text) {
    const { schema } = await this._ext();
    const rows = await this._query(
      `SELECT type, result_id, data FROM ${schema}.syrpc_put_result_get_request($1, $2::pg_catalog.uuid, $3::pg_catalog.jsonb)`,
      [this.app_name, resultId, text], {});
    return rows.length > 0 ? rows[0] : null;
  }

  /* One slice of waiting for a request: its row or null; signal cancels it. */
  async _waitOne(signal) {
    const { schema } = await this._ext();
    try {
      const rows = await this._query(`CALL ${schema}.syrpc_wait_request($1, $2::pg_catalog.float8)`,
        [this.app_name, seconds(this._sliceMs)], { signal, answerMs: this._sliceMs });
      return rows[0] && rows[0].result_id != null ? rows[0] : null;
    } catch (e) {
      if (errors.isStatementTimeout(e))
        return null;
      throw e;
    }
  }

  /* Give up row with reason; on extension 1.2 (no failRequest) answer it with an error object. */
  async _giveUp(row, reason) {
    const { version } = await this._ext();
    if (version >= 103)
      return this.failRequest(row.result_id, reason);
    return this._putResultText(row.result_id, encode({ error: 'request failed', type: row.type, reason }));
  }

  /*
   * What to do with the request of row: {answer: JSON text} or {reason}
   * to give it up with.
   */
  async _dispatch(row, handlers, opts) {
    const handler = Object.prototype.hasOwnProperty.call(handlers, row.type) ? handlers[row.type]
      : Object.prototype.hasOwnProperty.call(handlers, '*') ? handlers['*'] : null;
    if (handler === null)
      return { answer: encode({ error: 'unknown type', type: row.type }) };
    let req;
    try {
      req = this._requestOf(row, opts.raw);
    } catch (e) {
      if (!(e instanceof InexactNumberError))
        throw e;
      return { reason: reasonOf('request data cannot be represented exactly by the Node.js client: ', e.message) };
    }
    let result;
    try {
      result = await handler(req.data, { type: req.type, result_id: req.result_id });
    } catch (e) {
      opts.onError(e, req);
      return { reason: reasonOf('handler failed: ', (e && e.message) || String(e)) };
    }
    try {
      return { answer: encode(result === undefined ? null : result, 'result') };
    } catch (e) {
      opts.onError(e, req);
      return { reason: reasonOf("the handler's result cannot be sent as JSON: ", e.message) };
    }
  }

  /* One serve loop: wait, dispatch, answer (and claim the next), until state.closing. */
  async _loop(handlers, state, opts) {
    let row = null;
    let backoff = BACKOFF_MIN_MS;
    while (row !== null || !state.closing) {
      if (row === null) {
        try {
          row = await this._waitOne(state.ctl.signal);
          backoff = BACKOFF_MIN_MS;
        } catch (e) {
          if (state.closing && e instanceof CancelledError)
            break;
          if (e instanceof CancelledError) {
            /* pg_cancel_backend on the wait, which held no request: serve on */
            opts.onError(e, null);
            continue;
          }
          if (!(e instanceof ConnectionError))
            throw e;
          opts.onError(e, null);
          await nap(backoff, state.ctl.signal);
          backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
          continue;
        }
        if (row === null)
          continue;
      }
      const { answer, reason } = await this._dispatch(row, handlers, opts);
      let next = null;
      try {
        if (reason !== undefined)
          await this._giveUp(row, reason);
        else if (state.closing)
          await this._putResultText(row.result_id, answer);
        else
          next = await this._putResultGetRequest(row.result_id, answer);
      } catch (e) {
        if (reason === undefined && e instanceof BadInputError && e.sqlstate
            && (e.sqlstate.startsWith('22') || e.sqlstate === '54000')) {
          /* the server refused the answer (too large, say): tell the caller why */
          await this._giveUp(row, reasonOf("the server refused the handler's result: ", e.message))
            .catch((e2) => opts.onError(e2, row));
        } else if (e instanceof NotInFlightError) {
          /* our lease ran out and another worker answered, or it expired */
        } else if (e instanceof ConnectionError) {
          /* the request comes back by its lease, to us or another worker */
          opts.onError(e, row);
          await nap(backoff, state.ctl.signal);
          backoff = Math.min(backoff * 2, BACKOFF_MAX_MS);
        } else {
          throw e;
        }
      }
      state.served++;
      row = next;
    }
  }

  /*
   * Serve requests: handlers maps a type to an async function (data,
   * {type, result_id}) whose value is the result ("*": every type without
   * its own).  An unknown type is answered {"error": "unknown type",
   * "type": TYPE}; a handler that throws, or whose result cannot be sent,
   * gives the request up (failRequest) with the reason, so its caller gets
   * RequestFailedError.  options: concurrency (loops at once, default 1;
   * the pool needs as many clients), raw (handlers get the JSON text),
   * onError(err, request) (told of handler errors, lost connections and
   * cancelled waits, which it serves on after).
   * Resolves when close() has stopped it; rejects on an error it cannot
   * get past (no privilege, extension missing, ...).
   */
  serve(handlers, options = {}) {
    try {
      if (handlers === null || typeof handlers !== 'object')
        throw new BadInputError('serve needs an object of handlers, {type: async (data) => result}');
      for (const [type, fn] of Object.entries(handlers)) {
        if (type !== '*')
          checkName('type', type);
        if (typeof fn !== 'function')
          throw new BadInputError(`the handler of ${type} is not a function`);
      }
      if (this._serving)
        throw new BadInputError('this Server is already serving');
      if (this._closed)
        throw new BadInputError('this Server is closed');
      if (options.concurrency !== undefined && (!Number.isInteger(options.concurrency) || options.concurrency < 1))
        throw new BadInputError('concurrency must be a whole number, 1 or more');
    } catch (e) {
      return Promise.reject(e);
    }
    const concurrency = options.concurrency === undefined ? 1 : options.concurrency;
    const opts = { raw: !!options.raw, onError: typeof options.onError === 'function' ? options.onError : () => {} };
    const state = { closing: false, ctl: new AbortController(), served: 0 };
    let failure = null;
    const loops = [];
    for (let i = 0; i < concurrency; i++)
      loops.push(this._loop(handlers, state, opts).catch((e) => {
        if (failure === null)
          failure = e;
        state.closing = true;
        state.ctl.abort();
      }));
    this._state = state;
    this._serving = Promise.all(loops).then(() => {
      this._serving = null;
      if (failure !== null)
        throw failure;
    });
    return this._serving;
  }

  /*
   * Stop serving gracefully: waits that hold no request are cancelled,
   * requests being handled are answered; then the pool is ended if it is
   * ours.  Resolves when all that is done.
   */
  async close() {
    if (this._serving) {
      this._state.closing = true;
      this._state.ctl.abort();
      await this._serving.catch(() => {});
    }
    await super.close();
  }
}

module.exports = { Server };
