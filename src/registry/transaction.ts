import type pg from 'pg';

/** Runs fn in one transaction on one client; rolls back on any error. */
export async function withTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await pool.connect();
  try {
    await client.query('begin');
    const result = await fn(client);
    await client.query('commit');
    return result;
  } catch (err) {
    await client.query('rollback').catch(() => {});
    throw err;
  } finally {
    client.release();
  }
}

/** Serialises work on one model's checkpoints (versions, promotion) across processes. */
export async function lockModel(client: pg.PoolClient, model: string): Promise<void> {
  await client.query("select pg_advisory_xact_lock(hashtext('caelum.model:' || $1))", [model]);
}
