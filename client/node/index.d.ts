// TypeScript declarations of syrpc, the Node.js client of syrpc (RPC over PostgreSQL).

import type { Pool, PoolConfig } from 'pg';

/** Any JSON value; bigint is sent with all its digits, RawJSON as it is. */
export type JSONValue = null | boolean | number | string | JSONValue[] | { [key: string]: JSONValue };
export type Sendable = JSONValue | bigint | RawJSON | Sendable[] | { [key: string]: Sendable | undefined }
  | { toJSON(key?: string): unknown };

/** Settings of Client and Server; any other key is a pg.Pool option (host, port, user, max, ...). */
export interface Settings extends PoolConfig {
  /** The app: 1 to 63 bytes of letters, digits, "_", "." and "-". */
  app_name: string;
  /** A pg.Pool of your own; close() leaves it open. */
  pool?: Pool;
  /** A connection string (for a pool of its own). */
  dsn?: string;
  /** The default timeout (ms) of the waiting calls; null (the default): no limit. */
  timeout?: number | null;
  /** Waits in the server last at most this long at a time (default and maximum 10000). */
  waitSliceMs?: number;
  /** The original's AMQP settings are accepted and ignored. */
  [amq: `amq_${string}`]: unknown;
}

export interface WaitOptions {
  /** Milliseconds; null or Infinity: no limit; undefined: the settings' timeout. */
  timeoutMs?: number | null;
  /** Hand back data as the server's JSON text (every digit of every number kept). */
  raw?: boolean;
  /** Cancels the wait (CancelledError), unless it completed all the same. */
  signal?: AbortSignal;
}
export interface RawWaitOptions extends WaitOptions { raw: true }

export interface Result<T = JSONValue> { result_id: string; data: T }
export interface Request<T = JSONValue> { result_id: string; type: string; data: T }

/** JSON text sent as it is, also inside other data. */
export class RawJSON {
  constructor(text: string);
  readonly text: string;
}
export function rawJSON(text: string): RawJSON;

/** The longest single wait inside the server, in ms (10000). */
export const WAIT_SLICE_MS: number;

declare class Base {
  constructor(settings: Settings);
  readonly app_name: string;
  readonly pool: Pool;
  timeout: number | null;
  /** Look up the extension (optional: every call does it when needed). */
  init(): Promise<void>;
  /** End the pool if it is the client's own. */
  close(): Promise<void>;
}

export class Client extends Base {
  /** Queue a request; resolves with its result_id. */
  putRequest(type: string, data: Sendable): Promise<string>;
  /** Wait for the result of resultId and take it. */
  getResult(resultId: string, timeoutMs: number | null | undefined, options: RawWaitOptions): Promise<Result<string>>;
  getResult(resultId: string, options: RawWaitOptions): Promise<Result<string>>;
  getResult<T = JSONValue>(resultId: string, timeoutMs?: number | null, options?: WaitOptions): Promise<Result<T>>;
  getResult<T = JSONValue>(resultId: string, options: WaitOptions): Promise<Result<T>>;
  /** putRequest and getResult in one round trip; resolves with the result's data. */
  call(type: string, data: Sendable, options: RawWaitOptions): Promise<string>;
  call<T = JSONValue>(type: string, data: Sendable, options?: WaitOptions | number | null): Promise<T>;
}

export interface HandlerRequest { type: string; result_id: string }
export type Handler = (data: any, request: HandlerRequest) => Sendable | void | Promise<Sendable | void>;

export interface ServeOptions {
  /** Serve loops at once (default 1); the pool needs as many clients. */
  concurrency?: number;
  /** Handlers get the request data as the server's JSON text. */
  raw?: boolean;
  /** Told of handler errors and lost connections (request is null for the latter). */
  onError?: (err: unknown, request: Request<unknown> | null) => void;
}

export class Server extends Base {
  /** Wait for a request and claim it (a lease). */
  getRequest(timeoutMs: number | null | undefined, options: RawWaitOptions): Promise<Request<string>>;
  getRequest(options: RawWaitOptions): Promise<Request<string>>;
  getRequest<T = JSONValue>(timeoutMs?: number | null, options?: WaitOptions): Promise<Request<T>>;
  getRequest<T = JSONValue>(options: WaitOptions): Promise<Request<T>>;
  /** Answer a claimed request. */
  putResult(resultId: string, data: Sendable): Promise<void>;
  /** Give up a claimed request: its caller gets RequestFailedError with the reason (1 to 1024 bytes). */
  failRequest(resultId: string, reason: string): Promise<void>;
  /** Serve until close(); "*" handles every type without a handler of its own. */
  serve(handlers: { [type: string]: Handler }, options?: ServeOptions): Promise<void>;
  /** Stop serving gracefully, then end the pool if it is the server's own. */
  close(): Promise<void>;
}

export class SyrpcError extends Error {
  /** The server's SQLSTATE, or null. */
  readonly sqlstate: string | null;
  /** The same, as node-postgres names it. */
  readonly code: string | null;
  readonly detail: string | null;
  readonly hint: string | null;
  /** The result_id the error is about, when there is one (a call that timed out: wait on with getResult). */
  readonly resultId: string | null;
}
export class TimeoutError extends SyrpcError {}
export class BadInputError extends SyrpcError {}
export class ResultTakenError extends BadInputError {}
export class NotInFlightError extends BadInputError {}
export class WrongAppError extends BadInputError {}
export class UnknownResultError extends BadInputError {}
export class InexactNumberError extends BadInputError {
  /** The server's JSON text, unchanged. */
  readonly text: string | null;
  /** The number that a JavaScript number cannot hold. */
  readonly number: string | null;
  /** getRequest: the claimed request, with its data as text. */
  readonly request: { result_id: string; type: string; text: string } | null;
}
export class RequestFailedError extends SyrpcError {}
export class RequestExpiredError extends RequestFailedError {}
export class PermissionError extends SyrpcError {}
export class ReadOnlyError extends SyrpcError {}
export class CancelledError extends SyrpcError {}
export class ConnectionError extends SyrpcError {}
export class ServerError extends SyrpcError {}
