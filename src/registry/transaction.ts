import type pg from 'pg';
import { UnavailableError } from '../errors.js';

/**
 * Runs fn in one transaction on one client; rolls back on any error. A client that lost Postgres
 * (or could not roll back) leaves the pool rather than going back to it: its next user would wait
 * behind a query that will never be answered. Postgres ends the transaction with the connection.
 */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  let broken = false;
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    if (err instanceof UnavailableError && err.service === 'postgres') broken = true;
    else await client.query('rollback').catch(() => (broken = true));
    throw err;
  } finally {
    client.release(broken);
  }
}

/**
 * One write in a transaction of its own, for a request whose first statement writes. A lone
 * statement commits when Postgres runs it, even if it arrives late, after the client gave up on
 * a silent network and answered an error. Here the commit is sent only once the statement has
 * answered, so a late statement is rolled back with its connection.
 */
export async function writeAlone(pool: pg.Pool, text: string, values: unknown[]): Promise<pg.QueryResult> {
  return withTransaction(pool, (client) => client.query(text, values));
}

/** Serialises work on one model's checkpoints (versions, promotion) across processes. */
export async function lockModel(client: pg.PoolClient, model: string): Promise<void> {
  await client.query("select pg_advisory_xact_lock(hashtext('caelum.model:' || $1))", [model]);
}
