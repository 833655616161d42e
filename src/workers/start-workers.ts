// Starts the host workers of one process: `worker --host <id>` runs one; `dev` may stand in for
// every host of the config. They share a command connection, the per-queue consumers and one
// cancel subscription; each has its own blocking connection.
import type { Redis } from 'ioredis';
import type pg from 'pg';
import { QueueSet } from '../queues/queue-set.js';
import { createRegistry } from '../registry/index.js';
import { FencedLock } from '../locks/fenced-lock.js';
import { detachedMetrics, type Metrics } from '../metrics.js';
import type { LoadedFleet } from '../config/load-fleet.js';
import { Closers } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { queuesForHost } from '../queues/placement.js';
import { closeRedis, createRedis } from '../redis.js';
import { CancelListener } from './cancel-listener.js';
import { Consumers } from './consumers.js';
import { discoverGpus } from './gpu-discovery.js';
import { DEFAULT_HOST_WORKER_OPTIONS, HostWorker, type HostWorkerOptions } from './host-worker.js';

export interface WorkersOptions {
  fleet: LoadedFleet;
  pool: pg.Pool;
  hostIds: string[];
  redisUrl: string;
  prefix: string;
  logger: Logger;
  baseEnv: Record<string, string>;
  dataDir: string;
  version: string;
  options?: Partial<HostWorkerOptions> & { stalledIntervalMs?: number };
  nvidiaSmi?: string;
  metrics?: Metrics;
}

export interface RunningWorkers {
  workers: HostWorker[];
  close(): Promise<void>;
}

export async function startWorkers(opts: WorkersOptions): Promise<RunningWorkers> {
  const closers = new Closers(opts.logger);
  const options: HostWorkerOptions = { ...DEFAULT_HOST_WORKER_OPTIONS, ...opts.options };
  try {
    const redis = createRedis(opts.redisUrl, 'worker', opts.logger);
    closers.add('worker redis', () => closeRedis(redis));
    const registry = createRegistry(opts.pool);
    const metrics = opts.metrics ?? detachedMetrics();
    const locks = new FencedLock(redis, registry.marketData, opts.prefix, metrics);
    const queues = new QueueSet(opts.fleet, redis, opts.prefix, opts.logger);
    closers.add('queues', () => queues.close());
    const consumers = new Consumers(
      redis,
      opts.prefix,
      { lockDurationMs: options.lockDurationMs, stalledIntervalMs: opts.options?.stalledIntervalMs ?? 30_000 },
      opts.logger,
    );
    closers.add('consumers', () => consumers.close());

    const workers: HostWorker[] = [];
    const subscriber = createRedis(opts.redisUrl, 'worker', opts.logger);
    const listener = await CancelListener.start(
      subscriber,
      opts.prefix,
      (jobId) => workers.forEach((w) => w.cancel(jobId)),
      opts.logger,
    );
    closers.add('cancel listener', () => listener.close());

    const blockings: Redis[] = [];
    closers.add('blocking connections', () => Promise.all(blockings.map(closeRedis)).then(() => undefined));
    // All host workers close together, so one host's grace period does not wait on another's.
    closers.add('host workers', () => Promise.all(workers.map((w) => w.close())).then(() => undefined));
    for (const hostId of opts.hostIds) {
      const host = opts.fleet.hosts[hostId];
      if (!host) throw new Error(`unknown host "${hostId}"`);
      const discovery = await discoverGpus(host.gpus, opts.logger.child({ host: hostId }), opts.nvidiaSmi);
      const blocking: Redis = createRedis(opts.redisUrl, 'worker', opts.logger);
      blockings.push(blocking);
      const worker = new HostWorker({
        hostId,
        gpus: discovery.gpus,
        gpuSource: discovery.source,
        cpuSlots: host.cpuSlots,
        fleet: opts.fleet,
        served: queuesForHost(opts.fleet, hostId),
        consumers,
        registry,
        locks,
        metrics,
        queues,
        redis,
        blocking,
        prefix: opts.prefix,
        logger: opts.logger,
        baseEnv: opts.baseEnv,
        dataDir: opts.dataDir,
        version: opts.version,
        options,
      });
      workers.push(worker);
      await worker.start();
    }
    return { workers, close: () => closers.close() };
  } catch (err) {
    await closers.close().catch(() => {});
    throw err;
  }
}
