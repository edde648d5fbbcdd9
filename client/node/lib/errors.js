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
/* Arguments refused, here or by the server (class 22, 42622, 54000, SY003-SY008). */
class BadInputError extends SyrpcError {}
/* SY003: the result has already been taken. */
class ResultTakenError extends BadInputError {}
/* SY004: putResult/failRequest for a request that is not in flight. */
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
/* SY002: the request expired (request_ttl) before it was answered. */
class RequestExpiredError extends RequestFailedError {}
/* 42501: the role may not use this app (see syrpc_grant; GRANT syrpc_caller / syrpc_worker). */
class PermissionError extends SyrpcError {}
/* 25006: read-only transaction, or a hot standby. */
class ReadOnlyError extends SyrpcError {}
/* 57014 by pg_cancel_backend, or an AbortSignal that fired. */
class CancelledError extends SyrpcError {}
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
  return new Class(message, common);
}

/* A cancel by statement_timeout (a slice that ended, as libsyrpc counts it). */
function isStatementTimeout(err) {
  const code = err && (err.sqlstate || err.code);
  return code === '57014' && /statement timeout/.test(String(err.message || ''));
}

module.exports = {
  SyrpcError, TimeoutError, BadInputError, ResultTakenError, NotInFlightError, WrongAppError,
  UnknownResultError, InexactNumberError, RequestFailedError, RequestExpiredError,
  PermissionError, ReadOnlyError, CancelledError, ConnectionError, ServerError,
  fromPg, isConnectionLoss, isStatementTimeout,
};
