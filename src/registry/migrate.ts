// Versioned SQL migrations (src/registry/migrations/NNN_name.sql), forward only, applied in one
// transaction under an advisory lock so that processes starting together are safe. A database
// that is ahead of the code is refused: an older build must not write to a newer schema.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type pg from 'pg';
import type { Logger } from '../logger.js';
import { withTransaction } from './transaction.js';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'migrations');
// Any fixed number: all caelum-scheduler processes of one database take the same lock.
const LOCK_KEY = 72_413_001;
// A migration may wait for another process's (the advisory lock) and rewrite a large table, so it
// is bounded more loosely than the pool's requests.
const MIGRATION_TIMEOUT_MS = 10 * 60_000;

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export class SchemaAheadError extends Error {
  override name = 'SchemaAheadError';
}

export function loadMigrations(dir = DIR): Migration[] {
  return readdirSync(dir)
    .filter((f) => /^\d{3}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 3)),
      name: file.slice(4, -4),
      sql: readFileSync(path.join(dir, file), 'utf8'),
    }));
}

/** Applies what is missing; returns the versions it applied. */
export async function migrate(
  pool: pg.Pool,
  logger: Logger,
  schema = 'public',
  migrations = loadMigrations(),
): Promise<number[]> {
  const done = await withTransaction(pool, async (client) => {
    // query_timeout is the driver's wait for an answer; its types do not list it per query.
    const run = <R extends pg.QueryResultRow>(text: string, values?: unknown[]) =>
      client.query<R>({ text, values, query_timeout: MIGRATION_TIMEOUT_MS } as pg.QueryConfig);
    await run(`set local statement_timeout = ${MIGRATION_TIMEOUT_MS}`);
    await run('select pg_advisory_xact_lock($1)', [LOCK_KEY]);
    if (schema !== 'public') await run(`create schema if not exists ${client.escapeIdentifier(schema)}`);
    await run(`create table if not exists caelum_migrations (
      version integer primary key,
      name text not null,
      applied_at timestamptz not null default now()
    )`);
    const { rows } = await run<{ version: number }>('select version from caelum_migrations order by version');
    const applied = new Set(rows.map((r) => r.version));
    const newest = Math.max(0, ...migrations.map((m) => m.version));
    const ahead = rows.filter((r) => r.version > newest);
    if (ahead.length) {
      throw new SchemaAheadError(
        `the database has migration ${ahead.map((r) => r.version).join(', ')}, newer than this build knows (${newest}); upgrade caelum-scheduler`,
      );
    }
    const applying: number[] = [];
    for (const m of migrations) {
      if (applied.has(m.version)) continue;
      await run(m.sql);
      await run('insert into caelum_migrations (version, name) values ($1, $2)', [m.version, m.name]);
      applying.push(m.version);
    }
    return applying;
  });
  if (done.length) logger.info({ applied: done }, 'database migrated');
  return done;
}
