// Host workers in the test process, on the real Redis, under the test file's prefix: the
// worker half of the composition root, wired to the pool the test hands in (which may go through
// a TCP proxy the test controls).
import os from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Redis } from 'ioredis';
import type pg from 'pg';
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import { Closers } from '../../src/lifecycle.js';
import { FencedLock } from '../../src/locks/fenced-lock.js';
import { detachedMetrics, type Metrics } from '../../src/metrics.js';
import { QueueSet } from '../../src/queues/queue-set.js';
import { childrenKey } from '../../src/queues/redis-names.js';
import { createRegistry } from '../../src/registry/index.js';
import { openWorkerConnections } from '../../src/start.js';
import { childBaseEnv } from '../../src/workers/child-env.js';
import { DEFAULT_HOST_WORKER_OPTIONS, type HostWorkerOptions } from '../../src/workers/host-worker.js';
import { startWorkers, type RunningWorkers, type WorkersDeps } from '../../src/workers/start-workers.js';
import { testLogger } from './logger.js';
import { execa, type ResultPromise } from 'execa';
import { REPO_ROOT } from './fleet.js';
import { DATABASE_URL, REDIS_URL } from './servers.js';

export const TEST_WORKER_OPTIONS: HostWorkerOptions = {
  ...DEFAULT_HOST_WORKER_OPTIONS,
  lockDurationMs: 5_000,
  killGraceMs: 1_000,
  shutdownGraceMs: 1_000,
  heartbeatMs: 500,
  maxBlockMs: 2_000,
};

export async function startTestWorkers(
  fleet: LoadedFleet,
  prefix: string,
  pool: pg.Pool,
  hostIds: string[],
  options: Partial<HostWorkerOptions> & { stalledIntervalMs?: number } = {},
  nvidiaSmi?: string,
  extra: { metrics?: Metrics; redisUrl?: string; dataDir?: string; version?: string; onDecision?: WorkersDeps['onDecision'] } = {},
): Promise<RunningWorkers> {
  const closers = new Closers(testLogger);
  try {
    const dataDir = extra.dataDir ?? mkdtempSync(path.join(os.tmpdir(), 'caelum-worker-'));
    if (!extra.dataDir) closers.add('data dir', () => rmSync(dataDir, { recursive: true, force: true }));
    const connections = openWorkerConnections(extra.redisUrl ?? REDIS_URL, hostIds, testLogger, closers);
    const registry = createRegistry(pool);
    const metrics = extra.metrics ?? detachedMetrics();
    const queues = new QueueSet(fleet, connections.redis, prefix, testLogger);
    closers.add('queues', () => queues.close());
    const running = await startWorkers({
      fleet,
      hostIds,
      connections,
      registry,
      locks: new FencedLock(connections.redis, registry.marketData, prefix, metrics),
      queues,
      metrics,
      prefix,
      logger: testLogger,
      baseEnv: childBaseEnv(process.env),
      dataDir,
      version: extra.version ?? 'test',
      options: { ...TEST_WORKER_OPTIONS, ...options },
      ...(nvidiaSmi ? { nvidiaSmi } : {}),
      ...(extra.onDecision ? { onDecision: extra.onDecision } : {}),
    });
    closers.add('workers', () => running.close());
    return { workers: running.workers, close: () => closers.close() };
  } catch (err) {
    await closers.close().catch(() => {});
    throw err;
  }
}

/** The process group of a job's running child on a host, from the worker's run records; undefined before it starts. */
export async function childGroupOf(redis: Redis, prefix: string, host: string, jobId: string): Promise<number | undefined> {
  const runs = Object.values(await redis.hgetall(childrenKey(prefix, host))).map((raw) => JSON.parse(raw) as { jobId: string; pgid: number });
  return runs.find((r) => r.jobId === jobId)?.pgid;
}

/**
 * A real `caelum-scheduler worker --host <host>` process on the test's prefix, schema and fleet
 * file, with short locks and heartbeats so a kill -9 shows within a second or two; `env` adds
 * to (or overrides) that environment. The caller kills it (by this handle) and awaits it.
 */
export function spawnWorkerProcess(
  host: string,
  ctx: { prefix: string; schema: string; configFile: string },
  env: Record<string, string> = {},
): ResultPromise {
  return execa('node', [path.join(REPO_ROOT, 'bin/caelum-scheduler.js'), 'worker', '--host', host], {
    cwd: REPO_ROOT,
    env: {
      REDIS_URL,
      DATABASE_URL,
      CAELUM_DB_SCHEMA: ctx.schema,
      CAELUM_CONFIG: ctx.configFile,
      CAELUM_PREFIX: ctx.prefix,
      CAELUM_JOB_LOCK_MS: '2000',
      CAELUM_STALLED_CHECK_MS: '1000',
      CAELUM_HEARTBEAT_MS: '300',
      CAELUM_METRICS_PORT: '0',
      LOG_LEVEL: 'warn',
      ...env,
    },
    reject: false,
  });
}
