// The composition root: builds every part once, in order (pg pool and registry, Redis
// connections, metrics, the queue set and the lock, then the workers, the scheduler and the HTTP
// server that use them) and hands each its dependencies. No other module opens a connection
// (test/boundaries.test.ts checks it). Closing runs in reverse, every step even when one fails.
// The parts a process may leave out (the HTTP API, the scheduler, the workers) are imported only
// when it runs them: a worker process does not carry Fastify and Bull Board in its memory.
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { TokenEntry } from './config/tokens.js';
import type { PostgresTls } from './config/postgres-tls.js';
import type { RequestLogLevel } from './api/request-log.js';
import type { LoadedFleet } from './config/load-fleet.js';
import { withDeadline } from './health.js';
import { Closers } from './lifecycle.js';
import type { Logger } from './logger.js';
import { QueueSet, type Durability } from './queues/queue-set.js';
import { closeRedis, createRedis, redactUrl, waitForRedis, type RedisTarget } from './redis.js';
import { createPool } from './registry/pool.js';
import { migrate } from './registry/migrate.js';
import { createRegistry } from './registry/index.js';
import { createMetrics, type Metrics } from './metrics.js';
import { checkRedisSafety } from './redis-safety.js';
import { serveMetrics } from './metrics-server.js';
import type { AddressInfo } from 'node:net';
import { toError } from './errors.js';
import type { HostWorkerOptions } from './workers/host-worker.js';
import type { RunningWorkers, WorkerConnections } from './workers/start-workers.js';
import { FencedLock } from './locks/fenced-lock.js';
import { Notifier } from './notifications/notifier.js';
import { VERSION } from './version.js';

export interface StartOptions {
  fleet: LoadedFleet;
  logger: Logger;
  redis: RedisTarget;
  databaseUrl: string;
  databaseTls?: PostgresTls | undefined;
  prefix: string;
  poolMax: number;
  /** Postgres schema of the service's tables. */
  schema: string;
  api?: { tokens: readonly TokenEntry[]; port: number; host: string; requestLogLevel?: RequestLogLevel };
  /** For processes without the API (worker, scheduler): where to serve /metrics. */
  metricsServer?: { port: number; host: string };
  /** Run the cron scheduler in this process (and the notifier, when the fleet has webhook targets). */
  scheduler?: boolean;
  /** Each webhook target's secret, resolved from the file or the environment by the CLI. */
  notificationSecrets?: ReadonlyMap<string, string>;
  /** Replicas that must have an enqueue of the API or the scheduler before it counts (0: none). */
  durability?: { replicas: number; timeoutMs: number };
  workers?: {
    hostIds: string[];
    baseEnv: Record<string, string>;
    dataDir: string;
    version: string;
    options?: Partial<HostWorkerOptions> & { stalledIntervalMs?: number };
    nvidiaSmi?: string;
  };
}

export interface Running {
  metrics: Metrics;
  queues: QueueSet;
  redis: Redis;
  pool: pg.Pool;
  app?: FastifyInstance;
  workers?: RunningWorkers;
  /** Base URL of the HTTP server, when the API runs. */
  url?: string;
  close(): Promise<void>;
}

export class StartupError extends Error {
  override name = 'StartupError';
}

/** Opens the Redis connections the host workers of a process use (one blocking one per host). */
export function openWorkerConnections(redis: RedisTarget, hostIds: string[], logger: Logger, closers: Closers): WorkerConnections {
  const open = (name: string) => {
    const connection = createRedis(redis, 'worker', logger);
    closers.add(name, () => closeRedis(connection));
    return connection;
  };
  return {
    redis: open('worker redis'),
    subscriber: open('worker subscriber'),
    blocking: new Map(hostIds.map((host) => [host, open(`blocking redis of ${host}`)])),
  };
}

export async function startServices(opts: StartOptions): Promise<Running> {
  const closers = new Closers(opts.logger);
  try {
    const pool = createPool(opts.databaseUrl, opts.logger, { max: opts.poolMax, schema: opts.schema, tls: opts.databaseTls });
    closers.add('postgres pool', () => pool.end());
    await withDeadline(pool.query('select 1'), 5000, 'postgres').catch((err: unknown) => {
      throw new StartupError(`PostgreSQL at ${redactUrl(opts.databaseUrl)} is unreachable: ${toError(err).message}`, { cause: err });
    });
    // Every process migrates on start (under an advisory lock), so `dev` and a fresh fleet just
    // work; `caelum-scheduler migrate` does the same for those who prefer it explicit.
    await migrate(pool, opts.logger, opts.schema).catch((err: unknown) => {
      throw new StartupError(`migrating the database failed: ${toError(err).message}`, { cause: err });
    });
    const registry = createRegistry(pool);

    // The producer connection fails fast, so an API request gets 503 at once while Redis is away.
    const redis = createRedis(opts.redis, 'producer', opts.logger);
    closers.add('redis', () => closeRedis(redis));
    await waitForRedis(redis, opts.redis).catch((err: unknown) => {
      throw new StartupError(toError(err).message, { cause: err });
    });
    for (const warning of (await checkRedisSafety(redis)).warnings) opts.logger.warn(warning);
    const workerConnections = opts.workers ? openWorkerConnections(opts.redis, opts.workers.hostIds, opts.logger, closers) : undefined;

    const metrics = createMetrics();
    // Durable enqueues for the producers that answer someone (the API's caller, the scheduler's
    // fire history), on a connection of their own, since WAIT blocks the connection it runs on.
    let durability: Durability | undefined;
    if (opts.durability && opts.durability.replicas > 0 && (opts.api || opts.scheduler)) {
      const connection = createRedis(opts.redis, 'producer', opts.logger);
      closers.add('durable-write redis', () => closeRedis(connection));
      await waitForRedis(connection, opts.redis).catch((err: unknown) => {
        throw new StartupError(toError(err).message, { cause: err });
      });
      durability = { connection, ...opts.durability };
    }
    // One queue set for every producer of the process (API, scheduler, jobs that enqueue
    // follow-ups); enqueue() refuses at once while Redis is away, whoever calls it.
    const queues = new QueueSet(opts.fleet, redis, opts.prefix, opts.logger, durability);
    closers.add('queues', () => queues.close());
    // One lock for the process. Its holders are data-sync jobs, which must ride out a Redis blip
    // rather than fail at once, so it uses the workers' waiting connection when there is one;
    // the API only lists holders.
    const locks = new FencedLock(workerConnections?.redis ?? redis, registry.marketData, opts.prefix, metrics);

    let workers: RunningWorkers | undefined;
    if (opts.workers && workerConnections) {
      const { hostIds, ...rest } = opts.workers;
      const { startWorkers } = await import('./workers/start-workers.js');
      const running = await startWorkers({
        fleet: opts.fleet,
        hostIds,
        connections: workerConnections,
        registry,
        locks,
        queues,
        metrics,
        prefix: opts.prefix,
        logger: opts.logger,
        ...rest,
      });
      workers = running;
      closers.add('workers', () => running.close());
    }

    if (opts.scheduler) {
      const { Scheduler } = await import('./scheduler/scheduler.js');
      const scheduler = new Scheduler({
        fleet: opts.fleet,
        queues,
        schedules: registry.schedules,
        marketData: registry.marketData,
        metrics,
        logger: opts.logger,
      });
      await scheduler.start();
      closers.add('scheduler', () => scheduler.close());
      // The scheduler process is the fleet's control process: it also tells the webhooks.
      if (Object.keys(opts.fleet.notifications.targets).length > 0) {
        if (!opts.notificationSecrets) throw new StartupError('the notification targets have no secrets (resolveNotificationSecrets)');
        const deliveryConnection = createRedis(opts.redis, 'worker', opts.logger);
        closers.add('notification redis', () => closeRedis(deliveryConnection));
        const notifier = Notifier.start({
          fleet: opts.fleet,
          queues,
          registry,
          redis,
          workerConnection: deliveryConnection,
          prefix: opts.prefix,
          secrets: opts.notificationSecrets,
          metrics,
          logger: opts.logger,
          version: VERSION,
        });
        closers.add('notifier', () => notifier.close());
      }
    }

    let app: FastifyInstance | undefined;
    let url: string | undefined;
    if (opts.api) {
      const [{ buildApp }, { FeedSignal }, { FeedIndex }] = await Promise.all([
        import('./api/app.js'),
        import('./checkpoints/feed-signal.js'),
        import('./checkpoints/feed-index.js'),
      ]);
      const subscriber = createRedis(opts.redis, 'worker', opts.logger);
      closers.add('feed subscriber', () => closeRedis(subscriber));
      const feed = await FeedSignal.start(subscriber, opts.prefix);
      closers.add('feed signal', () => feed.close());
      const feedIndex = await FeedIndex.start(feed, registry.checkpoints, opts.logger);
      closers.add('feed index', async () => feedIndex.close());
      app = await buildApp({
        fleet: opts.fleet,
        queues,
        redis,
        pool,
        registry,
        locks,
        feed,
        feedIndex,
        metrics,
        logger: opts.logger,
        tokens: opts.api.tokens,
        requestLogLevel: opts.api.requestLogLevel,
      });
      const server = app;
      closers.add('http server', () => server.close());
      url = await app.listen({ port: opts.api.port, host: opts.api.host });
    }
    if (opts.metricsServer) {
      const server = await serveMetrics(metrics, opts.metricsServer.port, opts.metricsServer.host);
      closers.add('metrics server', () => new Promise<void>((resolve) => server.close(() => resolve())));
      if (!url) url = `http://${opts.metricsServer.host}:${(server.address() as AddressInfo).port}`;
    }
    return {
      metrics,
      queues,
      redis,
      pool,
      ...(workers ? { workers } : {}),
      ...(app ? { app } : {}),
      ...(url ? { url } : {}),
      close: () => closers.close(),
    };
  } catch (err) {
    await closers.close().catch(() => {});
    throw err;
  }
}
