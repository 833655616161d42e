// The Postgres pool. In embedded mode (PGlite behind a socket, see src/dev) the pool must hold a
// single connection: PGlite is one session, and two transactions on two connections hang.
import pg from 'pg';
import type { Logger } from '../logger.js';

export interface PoolOptions {
  max?: number;
  /** Milliseconds a query may run before Postgres cancels it. */
  statementTimeoutMs?: number;
  /** Schema the service's tables live in (tests use one each); `public` by default. */
  schema?: string;
}

export function createPool(url: string, logger: Logger, opts: PoolOptions = {}): pg.Pool {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: 3000,
    idleTimeoutMillis: 30_000,
    ...(opts.statementTimeoutMs ? { statement_timeout: opts.statementTimeoutMs } : {}),
    ...(opts.schema && opts.schema !== 'public' ? { options: `-c search_path=${opts.schema}` } : {}),
  });
  // An idle client that loses its server emits here; without a listener the process would crash.
  pool.on('error', (err) => logger.warn({ err }, 'postgres idle client error'));
  return pool;
}
