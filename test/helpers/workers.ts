// Host workers in the test process, on the real Redis, under the test file's prefix.
import os from 'node:os';
import { mkdtempSync } from 'node:fs';
import path from 'node:path';
import type pg from 'pg';
import type { Metrics } from '../../src/metrics.js';
import { childBaseEnv } from '../../src/workers/child-env.js';
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import { DEFAULT_HOST_WORKER_OPTIONS, type HostWorkerOptions } from '../../src/workers/host-worker.js';
import { startWorkers, type RunningWorkers } from '../../src/workers/start-workers.js';
import { testLogger } from './logger.js';
import { REDIS_URL } from './servers.js';

export const TEST_WORKER_OPTIONS: HostWorkerOptions = {
  ...DEFAULT_HOST_WORKER_OPTIONS,
  lockDurationMs: 5_000,
  killGraceMs: 1_000,
  shutdownGraceMs: 1_000,
  heartbeatMs: 500,
  maxBlockMs: 2_000,
};

export function startTestWorkers(
  fleet: LoadedFleet,
  prefix: string,
  pool: pg.Pool,
  hostIds: string[],
  options: Partial<HostWorkerOptions> & { stalledIntervalMs?: number } = {},
  nvidiaSmi?: string,
  extra: { metrics?: Metrics; redisUrl?: string } = {},
): Promise<RunningWorkers> {
  return startWorkers({
    fleet,
    pool,
    hostIds,
    redisUrl: extra.redisUrl ?? REDIS_URL,
    ...(extra.metrics ? { metrics: extra.metrics } : {}),
    prefix,
    logger: testLogger,
    baseEnv: childBaseEnv(process.env),
    dataDir: mkdtempSync(path.join(os.tmpdir(), 'caelum-worker-')),
    version: 'test',
    options: { ...TEST_WORKER_OPTIONS, ...options },
    ...(nvidiaSmi ? { nvidiaSmi } : {}),
  });
}
