// `caelum-scheduler migrate`: applies the pending migrations and says which.
import type { Env } from '../config/env.js';
import { DEFAULT_DATABASE_URL } from '../config/env.js';
import type { Logger } from '../logger.js';
import { loadMigrations, migrate } from '../registry/migrate.js';
import { createPool } from '../registry/pool.js';

export async function migrateCommand(env: Env, logger: Logger): Promise<void> {
  const pool = createPool(env.databaseUrl ?? DEFAULT_DATABASE_URL, logger, { max: 1, schema: env.dbSchema, tls: env.databaseTls });
  try {
    const applied = await migrate(pool, logger, env.dbSchema);
    const newest = Math.max(...loadMigrations().map((m) => m.version));
    process.stdout.write(
      applied.length ? `applied migration(s) ${applied.join(', ')}; the schema is at ${newest}\n` : `nothing to do; the schema is at ${newest}\n`,
    );
  } finally {
    await pool.end();
  }
}
