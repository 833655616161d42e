// Where the real Redis and PostgreSQL of the test run are: REDIS_URL and DATABASE_URL when set
// (the CI script and the README's test command leave them unset), else the local defaults.
import { randomBytes } from 'node:crypto';

export const REDIS_URL = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
export const DATABASE_URL = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/test';

/** A name no other test file or rerun uses: the BullMQ prefix or schema of one test file. */
export function uniqueName(label: string): string {
  return `t_${label.replace(/[^a-z0-9]/gi, '').toLowerCase()}_${randomBytes(4).toString('hex')}`;
}

/** A URL on which nothing listens, for "server is down" cases. */
export const DEAD_REDIS_URL = 'redis://127.0.0.1:1';
export const DEAD_DATABASE_URL = 'postgres://postgres@127.0.0.1:1/test';
