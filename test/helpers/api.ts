// An API wired to the real Redis and Postgres under a prefix of its own, driven with inject().
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { buildApp } from '../../src/api/app.js';
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import type { RequestLogLevel } from '../../src/api/request-log.js';
import type { Logger } from '../../src/logger.js';
import { QueueSet } from '../../src/queues/queue-set.js';
import { allTokens, hashToken, type TokenEntry } from '../../src/config/tokens.js';
import { closeRedis, createRedis, waitForRedis } from '../../src/redis.js';
import { createPool } from '../../src/registry/pool.js';
import { testFleet } from './fleet.js';
import { FeedIndex } from '../../src/checkpoints/feed-index.js';
import { FeedSignal } from '../../src/checkpoints/feed-signal.js';
import { createMetrics, type Metrics } from '../../src/metrics.js';
import { createRegistry, type Registry } from '../../src/registry/index.js';
import { FencedLock } from '../../src/locks/fenced-lock.js';
import { createTestSchema, type TestSchema } from './db.js';
import { testLogger } from './logger.js';
import { deletePrefix } from './redis.js';
import { DATABASE_URL, DEAD_DATABASE_URL, DEAD_REDIS_URL, REDIS_URL, uniqueName } from './servers.js';

export const OPERATOR = 'operator-token-for-tests';
export const READER = 'reader-token-for-tests';
/** A tokens-file token with the enqueue scope (scripts, CI), named "ci". */
export const ENQUEUER = 'enqueue-token-for-tests';
/** FinColl's tokens-file token (report-loads), named "fincoll". */
export const LOAD_REPORTER = 'report-loads-token-for-tests';
/** A tokens-file token with the operate scope, named "ops-alice". */
export const ALICE = 'operate-token-of-alice-for-tests';
export const asOperator = { authorization: `Bearer ${OPERATOR}` };
export const asReader = { authorization: `Bearer ${READER}` };
export const asEnqueuer = { authorization: `Bearer ${ENQUEUER}` };
export const asLoadReporter = { authorization: `Bearer ${LOAD_REPORTER}` };
export const asAlice = { authorization: `Bearer ${ALICE}` };

/** The environment's two tokens ("operator", "reader") and three from a tokens file ("ci", "fincoll", "ops-alice"). */
export const TEST_TOKENS: TokenEntry[] = allTokens(
  { apiToken: OPERATOR, readToken: READER },
  [
    { name: 'ci', scopes: ['enqueue'], hash: hashToken(ENQUEUER) },
    { name: 'fincoll', scopes: ['report-loads'], hash: hashToken(LOAD_REPORTER) },
    { name: 'ops-alice', scopes: ['operate'], hash: hashToken(ALICE) },
  ],
  'test tokens',
);

export interface ApiHarness {
  app: FastifyInstance;
  queues: QueueSet;
  registry: Registry;
  feed: FeedSignal;
  metrics: Metrics;
  redis: Redis;
  pool: pg.Pool;
  fleet: LoadedFleet;
  prefix: string;
  close(): Promise<void>;
}

export async function startApi(
  opts: {
    fleet?: LoadedFleet;
    redisUrl?: string;
    databaseUrl?: string;
    prefix?: string;
    schema?: string;
    /** A second API on a prefix another harness owns: leave its keys alone on close. */
    shared?: boolean;
    poolMax?: number;
    logger?: Logger;
    requestLogLevel?: RequestLogLevel;
    /** How often the feed index reads the heads again (feed-index.ts). */
    feedRefreshMs?: number;
    /** Durable enqueues: acknowledged once this many replicas have them. */
    durability?: { replicas: number; timeoutMs: number };
  } = {},
): Promise<ApiHarness> {
  const fleet = opts.fleet ?? testFleet();
  const prefix = opts.prefix ?? uniqueName('api');
  const redisUrl = opts.redisUrl ?? REDIS_URL;
  const redis = createRedis(redisUrl, 'producer', testLogger);
  const dead = redisUrl === DEAD_REDIS_URL;
  if (!dead) await waitForRedis(redis, redisUrl);
  const databaseUrl = opts.databaseUrl ?? DATABASE_URL;
  // Never the public schema: without one of the caller's, the harness makes (and drops) its own.
  const own: TestSchema | undefined = opts.schema || databaseUrl === DEAD_DATABASE_URL ? undefined : await createTestSchema('api', databaseUrl);
  const schema = opts.schema ?? own?.schema;
  const pool = createPool(databaseUrl, testLogger, { max: opts.poolMax ?? 4, ...(schema ? { schema } : {}) });
  const writes = opts.durability ? createRedis(redisUrl, 'producer', testLogger) : undefined;
  if (writes) await waitForRedis(writes, redisUrl);
  const queues = new QueueSet(fleet, redis, prefix, testLogger, writes && opts.durability ? { connection: writes, ...opts.durability } : undefined);
  // Against a dead Redis (the "Redis is down" tests) the feed subscribes to the live one, since
  // subscribing waits for a connection.
  const subscriber = createRedis(dead ? REDIS_URL : redisUrl, 'worker', testLogger);
  const feed = await FeedSignal.start(subscriber, prefix);
  const registry = createRegistry(pool);
  const metrics = createMetrics({ defaults: false });
  const locks = new FencedLock(redis, registry.marketData, prefix, metrics);
  const logging = { logger: opts.logger ?? testLogger, requestLogLevel: opts.requestLogLevel };
  const feedIndex = await FeedIndex.start(feed, registry.checkpoints, testLogger, opts.feedRefreshMs);
  const app = await buildApp({ fleet, queues, redis, pool, registry, locks, feed, feedIndex, metrics, ...logging, tokens: TEST_TOKENS });
  await app.ready();
  return {
    app,
    queues,
    registry,
    feed,
    metrics,
    redis,
    pool,
    fleet,
    prefix,
    async close() {
      await app.close();
      feedIndex.close();
      await feed.close();
      await closeRedis(subscriber);
      await queues.close();
      await closeRedis(redis);
      if (writes) await closeRedis(writes);
      await pool.end();
      await own?.drop();
      if (redisUrl === REDIS_URL && !opts.shared) await deletePrefix(prefix);
    },
  };
}

/** Jobs in every queue of the harness, whatever their state: "nothing was enqueued" checks. */
export async function countAllJobs(h: ApiHarness): Promise<number> {
  const counts = await Promise.all(h.queues.all().map((e) => e.queue.getJobCounts()));
  return counts.flatMap((c) => Object.values(c)).reduce((a, b) => a + b, 0);
}
