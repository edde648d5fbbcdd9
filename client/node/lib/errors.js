'use strict';
/*
 * The errors of syrpc: one class per kind of failure, as libsyrpc's
 * statuses group the server's SQLSTATEs (client/c/syrpc.c,
 * status_of_sqlstate).  Every error carries the server's sqlstate, detail
 * and hint when there was one, and the original error as `cause`.
 */

class SyrpcError extends Error {
  constructor(message, props = {}) {
    super(message, props.cause !== undefined ? { cause: props.cause } : undefined);
    this.name = this.constructor.name;
    this.sqlstate = props.sqlstate || null;
    this.code = this.sqlstate;          /* as node-postgres names the SQLSTATE */
    this.detail = props.detail || null;
    this.hint = props.hint || null;
    this.resultId = props.resultId || null;
  }
}

/* Nothing arrived within the timeout (also: statement_timeout ended the wait). */
class TimeoutError extends SyrpcError {}
/* Arguments refused, here or by the server (class 22, 42622, 54000, SY003-SY005, SY008). */
class BadInputError extends SyrpcError {}
/* SY003: the result has already been taken. */
class ResultTakenError extends BadInputError {}
/* SY004: putResult/putError/failRequest/extendLease/release of a request that is not in flight. */
class NotInFlightError extends BadInputError {}
/* SY005: the result_id belongs to another app. */
class WrongAppError extends BadInputError {}
/* SY008: unknown or expired result_id. */
class UnknownResultError extends BadInputError {}
/*
 * Data that a JavaScript number cannot hold exactly (it would change
 * silently).  `text` holds the server's JSON text, so nothing is lost.
 */
class InexactNumberError extends BadInputError {
  constructor(message, props = {}) {
    super(message, props);
    this.text = props.text !== undefined ? props.text : null;
    this.number = props.number !== undefined ? props.number : null;
    this.request = props.request || null;
  }
}
/* SY001: the request failed (no worker answered within max_attempts leases, or a worker gave it up). */
class RequestFailedError extends SyrpcError {}
/* SY002: the request expired (request_ttl, or its deadline) before it was answered. */
class RequestExpiredError extends RequestFailedError {}
/*
 * SY006 (extension 1.7): the worker answered with an error (putError).
 * The message is the worker's, verbatim; `detail` is the worker's detail
 * as a JavaScript value (null when it gave none, or when a number in it
 * cannot be held exactly), `detailText` its JSON text as the server sent
 * it (null when none).  From the server: props.detailText (its DETAIL);
 * made here (a handler may throw one, for serve to send as it is):
 * props.detail, any JSON data.
 */
class RemoteError extends RequestFailedError {
  constructor(message, props = {}) {
    super(message, { ...props, detail: null });
    /* required here: json.js requires this file first */
    const json = require('./json');
    this.detail = null;
    this.detailText = null;
    if (props.detailText !== undefined && props.detailText !== null) {
      this.detailText = String(props.detailText);
      try {
        this.detail = json.decode(this.detailText, "the remote error's detail");
      } catch (e) {
        /* not exact (InexactNumberError) or not JSON: the text is in detailText */
      }
    } else if (props.detail !== undefined && props.detail !== null) {
      this.detail = props.detail;
      try {
        this.detailText = json.encode(props.detail, 'detail');
      } catch (e) {
        /* not JSON (NaN, a cycle): no text */
      }
    }
  }
}

/* 42501: the role may not use this app (see syrpc_grant; GRANT syrpc_caller / syrpc_worker). */
class PermissionError extends SyrpcError {}
/* 25006: read-only transaction, or a hot standby. */
class ReadOnlyError extends SyrpcError {}
/* 57014 by pg_cancel_backend, or an AbortSignal that fired (the wait was cancelled, the request lives on). */
class CancelledError extends SyrpcError {}
/* SY007 (extension 1.7): the request was cancelled (Client.cancel); no result will come. */
class RequestCancelledError extends CancelledError {}
/* Could not connect, or the connection was lost (08xxx, 57P01-57P05, socket errors). */
class ConnectionError extends SyrpcError {}
/* Any other error from the server (also: the extension is not installed). */
class ServerError extends SyrpcError {}

const BY_SQLSTATE = {
  SY001: RequestFailedError,
  SY002: RequestExpiredError,
  SY003: ResultTakenError,
  SY004: NotInFlightError,
  SY005: WrongAppError,
  SY006: RemoteError,
  SY007: RequestCancelledError,
  SY008: UnknownResultError,
  42501: PermissionError,
  42622: BadInputError,
  54000: BadInputError,
  25006: ReadOnlyError,
  57014: CancelledError,
};

/* Error codes of node's sockets that mean the connection is gone or never came. */
const SOCKET_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', 'ENOENT', 'ETIMEDOUT',
  'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN', 'ENOTFOUND', 'ECONNABORTED']);

function classOf(sqlstate) {
  if (!sqlstate)
    return null;
  if (BY_SQLSTATE[sqlstate])
    return BY_SQLSTATE[sqlstate];
  if (sqlstate.startsWith('SY') || sqlstate.startsWith('22'))
    return BadInputError;
  if (sqlstate.startsWith('08') || sqlstate.startsWith('57P'))
    return ConnectionError;
  return ServerError;
}

/*
 * Whether err says the connection is unusable: a socket error, a
 * connection-class SQLSTATE, or node-postgres's own messages.
 */
function isConnectionLoss(err) {
  if (err instanceof ConnectionError)
    return true;
  if (!err || typeof err !== 'object')
    return false;
  if (typeof err.code === 'string' && (SOCKET_CODES.has(err.code) || /^(08|57P)/.test(err.code)))
    return true;
  return /Connection terminated|connection timeout|Client has encountered a connection error|not queryable|timeout exceeded when trying to connect/i
    .test(String(err.message || ''));
}

/* The syrpc error of an error from node-postgres (or a socket); syrpc errors pass as they are. */
function fromPg(err, props = {}) {
  if (err instanceof SyrpcError)
    return err;
  const sqlstate = err && typeof err.code === 'string' && /^[0-9A-Z]{5}$/.test(err.code) ? err.code : null;
  const message = (err && err.message) || String(err);
  const common = { sqlstate, detail: err && err.detail, hint: err && err.hint, cause: err, ...props };
  let Class = classOf(sqlstate);
  if (!Class || (Class === ServerError && isConnectionLoss(err)))
    Class = isConnectionLoss(err) ? ConnectionError : ServerError;
  if (Class === RemoteError) {
    common.detailText = common.detail;
    delete common.detail;
  }
  return new Class(message, common);
}

/* A cancel by statement_timeout (a slice that ended, as libsyrpc counts it). */
function isStatementTimeout(err) {
  const code = err && (err.sqlstate || err.code);
  return code === '57014' && /statement timeout/.test(String(err.message || ''));
}

module.exports = {
  SyrpcError, TimeoutError, BadInputError, ResultTakenError, NotInFlightError, WrongAppError,
  UnknownResultError, InexactNumberError, RequestFailedError, RequestExpiredError, RemoteError,
  PermissionError, ReadOnlyError, CancelledError, RequestCancelledError, ConnectionError, ServerError,
  fromPg, isConnectionLoss, isStatementTimeout,
};
