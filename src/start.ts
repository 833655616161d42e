// The composition root: builds every part in order (pg pool, Redis, queues, then the parts that
// use them, then the HTTP server) and hands each its dependencies. Closing runs in reverse.
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { buildApp } from './api/app.js';
import type { Tokens } from './api/auth.js';
import type { RequestLogLevel } from './api/request-log.js';
import type { LoadedFleet } from './config/load-fleet.js';
import { withDeadline } from './health.js';
import { Closers } from './lifecycle.js';
import type { Logger } from './logger.js';
import { QueueSet } from './queues/queue-set.js';
import { closeRedis, createRedis, redactUrl, waitForRedis } from './redis.js';
import { createPool } from './registry/pool.js';
import { migrate } from './registry/migrate.js';
import { createRegistry } from './registry/index.js';
import { FeedSignal } from './registry/feed-signal.js';
import { Scheduler } from './scheduler/scheduler.js';
import { createMetrics, type Metrics } from './metrics.js';
import { checkRedisSafety } from './redis-safety.js';
import { serveMetrics } from './metrics-server.js';
import type { AddressInfo } from 'node:net';
import { toError } from './errors.js';
import type { HostWorkerOptions } from './workers/host-worker.js';
import { startWorkers, type RunningWorkers } from './workers/start-workers.js';

export interface StartOptions {
  fleet: LoadedFleet;
  logger: Logger;
  redisUrl: string;
  databaseUrl: string;
  prefix: string;
  poolMax: number;
  /** Postgres schema of the service's tables. */
  schema: string;
  api?: { tokens: Tokens; port: number; host: string; requestLogLevel?: RequestLogLevel };
  /** For processes without the API (worker, scheduler): where to serve /metrics. */
  metricsServer?: { port: number; host: string };
  /** Run the cron scheduler in this process. */
  scheduler?: boolean;
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

export async function startServices(opts: StartOptions): Promise<Running> {
  const closers = new Closers(opts.logger);
  try {
    const pool = createPool(opts.databaseUrl, opts.logger, { max: opts.poolMax, schema: opts.schema });
    closers.add('postgres pool', () => pool.end());
    await withDeadline(pool.query('select 1'), 5000, 'postgres').catch((err: unknown) => {
      throw new StartupError(`PostgreSQL at ${redactUrl(opts.databaseUrl)} is unreachable: ${toError(err).message}`);
    });
    // Every process migrates on start (under an advisory lock), so `dev` and a fresh fleet just
    // work; `caelum-scheduler migrate` does the same for those who prefer it explicit.
    await migrate(pool, opts.logger, opts.schema).catch((err: unknown) => {
      throw new StartupError(`migrating the database failed: ${toError(err).message}`);
    });

    const redis = createRedis(opts.redisUrl, 'producer', opts.logger);
    closers.add('redis', () => closeRedis(redis));
    await waitForRedis(redis, opts.redisUrl).catch((err: unknown) => {
      throw new StartupError(toError(err).message);
    });

    const queues = new QueueSet(opts.fleet, redis, opts.prefix, opts.logger);
    closers.add('queues', () => queues.close());
    const metrics = createMetrics();
    for (const warning of (await checkRedisSafety(redis)).warnings) opts.logger.warn(warning);

    let workers: RunningWorkers | undefined;
    if (opts.workers) {
      const running = await startWorkers({
        fleet: opts.fleet,
        pool,
        redisUrl: opts.redisUrl,
        prefix: opts.prefix,
        logger: opts.logger,
        metrics,
        ...opts.workers,
      });
      workers = running;
      closers.add('workers', () => running.close());
    }

    const registry = createRegistry(pool);
    if (opts.scheduler) {
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
    }

    let app: FastifyInstance | undefined;
    let url: string | undefined;
    if (opts.api) {
      const feed = await FeedSignal.start(createRedis(opts.redisUrl, 'worker', opts.logger), opts.prefix);
      closers.add('feed signal', () => feed.close());
      app = await buildApp({
        fleet: opts.fleet,
        queues,
        redis,
        pool,
        registry,
        feed,
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
