// An API process's parts, in-process, listening on a real loopback port (port 0), under the
// benchmark's own prefix and schema: what startApi in test/helpers/api.ts builds, plus listen().
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { buildApp } from '../src/api/app.js';
import type { LoadedFleet } from '../src/config/load-fleet.js';
import { QueueSet } from '../src/queues/queue-set.js';
import { closeRedis, createRedis, waitForRedis } from '../src/redis.js';
import { createPool } from '../src/registry/pool.js';
import { FeedSignal } from '../src/registry/feed-signal.js';
import { createMetrics } from '../src/metrics.js';
import { createRegistry, type Registry } from '../src/registry/index.js';
import { DATABASE_URL, logger, REDIS_URL } from './lib.js';

export const OPERATOR = 'operator-token-for-benchmarks';
export const READER = 'reader-token-for-benchmarks';

export interface BenchApi {
  app: FastifyInstance;
  url: string;
  queues: QueueSet;
  registry: Registry;
  feed: FeedSignal;
  redis: Redis;
  pool: pg.Pool;
  close(): Promise<void>;
}

export async function startBenchApi(fleet: LoadedFleet, prefix: string, schema: string, poolMax = 10): Promise<BenchApi> {
  const redis = createRedis(REDIS_URL, 'producer', logger);
  await waitForRedis(redis, REDIS_URL);
  const pool = createPool(DATABASE_URL, logger, { max: poolMax, schema });
  const queues = new QueueSet(fleet, redis, prefix, logger);
  const feed = await FeedSignal.start(createRedis(REDIS_URL, 'worker', logger), prefix);
  const registry = createRegistry(pool);
  const metrics = createMetrics({ defaults: false });
  const app = await buildApp({ fleet, queues, redis, pool, registry, feed, metrics, logger, tokens: { operator: OPERATOR, read: READER } });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    app,
    url,
    queues,
    registry,
    feed,
    redis,
    pool,
    async close() {
      await app.close();
      await feed.close();
      await queues.close();
      await closeRedis(redis);
      await pool.end();
    },
  };
}
