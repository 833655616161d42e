// Fails the run at once, with the command that fixes it, when Redis or Postgres is down; then
// brings dist/ up to date for the tests that run the built command.
import { Redis } from 'ioredis';
import pg from 'pg';
import { REPO_ROOT } from './fleet.js';
import { ensureFreshBuild } from './fresh-build.js';
import { DATABASE_URL, REDIS_URL } from './servers.js';

export default async function setup(): Promise<void> {
  await assertServersReachable();
  ensureFreshBuild(REPO_ROOT);
}

async function assertServersReachable(): Promise<void> {
  const redis = new Redis(REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(
      `Redis is not reachable at ${REDIS_URL} (${String(err)}). Start it with:\n` +
        '  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no',
    );
  } finally {
    redis.disconnect();
  }
  const client = new pg.Client({ connectionString: DATABASE_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (err) {
    throw new Error(
      `PostgreSQL is not reachable at ${DATABASE_URL} (${String(err)}). Start it with:\n` +
        '  pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start',
    );
  } finally {
    await client.end().catch(() => {});
  }
}
