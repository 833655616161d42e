// A Postgres schema of the test file's own, migrated, and dropped at the end.
import pg from 'pg';
import { migrate } from '../../src/registry/migrate.js';
import { createPool } from '../../src/registry/pool.js';
import { testLogger } from './logger.js';
import { DATABASE_URL, uniqueName } from './servers.js';

export interface TestSchema {
  schema: string;
  pool: pg.Pool;
  drop(): Promise<void>;
}

export async function createTestSchema(label: string, url = DATABASE_URL): Promise<TestSchema> {
  const schema = uniqueName(label);
  const pool = createPool(url, testLogger, { schema, max: 4 });
  await migrate(pool, testLogger, schema);
  return {
    schema,
    pool,
    async drop() {
      await pool.end();
      await dropSchema(schema, url);
    },
  };
}

/** Drops a schema that processes under test migrated into themselves (the test names it, uniqueName()). */
export async function dropSchema(schema: string, url = DATABASE_URL): Promise<void> {
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  try {
    await admin.query(`drop schema if exists ${admin.escapeIdentifier(schema)} cascade`);
  } finally {
    await admin.end();
  }
}
