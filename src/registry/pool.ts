// The Postgres pool. In embedded mode (PGlite behind a socket, see src/dev) the pool must hold a
// single connection: PGlite is one session, and two transactions on two connections hang.
//
// Every wait on Postgres is bounded, so an outage is an error in seconds rather than a request
// that hangs: connecting (a refused or silent server), each statement (Postgres cancels it), and
// reading each answer (the server or the path to it went silent: the driver gives up even though
// the socket looks open). TCP keepalive finds a peer that vanished from an idle connection. An
// error that means Postgres could not be reached or did not answer leaves the pool as
// UnavailableError('postgres'), so the API answers 503 naming Postgres; a real SQL error leaves
// it unchanged.
import type { ConnectionOptions } from 'node:tls';
import pg from 'pg';
import type { PostgresTls } from '../config/postgres-tls.js';
import { UnavailableError } from '../errors.js';
import type { Logger } from '../logger.js';
import { isTransientDbError } from './retry.js';

/** The bounds of a pool unless its options say otherwise (milliseconds). */
export const POSTGRES_BOUNDS = {
  /** Getting a connection: a free one from the pool, or a new one through its startup. */
  connectMs: 3000,
  /** One statement, after which Postgres cancels it (SQLSTATE 57014). */
  statementMs: 10_000,
  /** Waiting for an answer the server never sends: a little past the statement timeout. */
  readMarginMs: 2000,
  /** A transaction left idle (its client gone) ends, and with it its locks. */
  idleInTransactionMs: 60_000,
  /** An idle connection starts TCP keepalive probes after this. */
  keepAliveMs: 10_000,
} as const;

export interface PoolOptions {
  max?: number;
  /** Milliseconds a statement may run before Postgres cancels it; the driver waits a little longer for an answer. */
  statementTimeoutMs?: number;
  /** Milliseconds to get a connection (from the pool or a new one). */
  connectTimeoutMs?: number;
  /** Schema the service's tables live in (tests use one each); `public` by default. */
  schema?: string;
  /** TLS to the server (DATABASE_URL's sslmode and its files); none by default. */
  tls?: PostgresTls | undefined;
}

/**
 * libpq's modes in Node's terms: `require` encrypts without checking who answers, `verify-ca`
 * checks the chain but not the name, `verify-full` both (what to use across machines).
 */
export function sslOptions(t: PostgresTls): ConnectionOptions {
  return {
    ...(t.ca ? { ca: t.ca } : {}),
    ...(t.cert ? { cert: t.cert } : {}),
    ...(t.key ? { key: t.key } : {}),
    rejectUnauthorized: t.mode !== 'require',
    ...(t.mode === 'verify-ca' ? { checkServerIdentity: () => undefined } : {}),
  };
}

const UNREACHABLE = 'Postgres is unreachable';

/** A connection problem as the service's typed error; a real SQL error (or one already typed) as it is. */
export function asUnavailable(err: unknown): unknown {
  if (err instanceof UnavailableError || !isTransientDbError(err)) return err;
  return new UnavailableError('postgres', UNREACHABLE, { cause: err });
}

type Callback = (err: unknown, ...rest: unknown[]) => void;
type AnyFunction = (...args: unknown[]) => unknown;

/** The same function, its failures (by callback or by promise) passed through asUnavailable. */
function typingFailures<F>(f: F): F {
  const fn = f as unknown as AnyFunction;
  const typed: AnyFunction = (...args) => {
    const last = args.at(-1);
    if (typeof last === 'function') {
      const callback = last as Callback;
      args[args.length - 1] = (err: unknown, ...rest: unknown[]) => callback(err ? asUnavailable(err) : err, ...rest);
      return fn(...args);
    }
    const result = fn(...args);
    return result instanceof Promise ? result.catch((err: unknown) => Promise.reject(asUnavailable(err))) : result;
  };
  return typed as unknown as F;
}

export function createPool(url: string, logger: Logger, opts: PoolOptions = {}): pg.Pool {
  const statementMs = opts.statementTimeoutMs ?? POSTGRES_BOUNDS.statementMs;
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: opts.connectTimeoutMs ?? POSTGRES_BOUNDS.connectMs,
    idleTimeoutMillis: 30_000,
    statement_timeout: statementMs,
    query_timeout: statementMs + POSTGRES_BOUNDS.readMarginMs,
    idle_in_transaction_session_timeout: POSTGRES_BOUNDS.idleInTransactionMs,
    keepAlive: true,
    keepAliveInitialDelayMillis: POSTGRES_BOUNDS.keepAliveMs,
    ...(opts.tls ? { ssl: sslOptions(opts.tls) } : {}),
    ...(opts.schema && opts.schema !== 'public' ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on('error', (err) => logger.warn({ err }, 'postgres idle client error'));
  // Three ways in: pool.query, pool.connect, and the queries of a client checked out for a
  // transaction (each client once, as it joins the pool).
  pool.query = typingFailures(pool.query.bind(pool));
  pool.connect = typingFailures(pool.connect.bind(pool));
  pool.on('connect', (client) => {
    client.query = typingFailures(client.query.bind(client));
    // A client checked out between two statements (inside a transaction) that loses its server
    // emits here, and the pool listens only to idle clients: without this the process would
    // crash. Its next query fails on the broken connection, which ends the transaction.
    client.on('error', (err) => logger.warn({ err }, 'postgres connection lost while checked out'));
  });
  return pool;
}
