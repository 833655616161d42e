// Starts the host workers of one process: `worker --host <id>` runs one; `dev` may stand in for
// every host of the config. They share the command connection, the per-queue consumers and one
// subscriber (cancel requests, drain changes); each has its own blocking connection. Every
// connection, the registry, the lock and the queue set are made by the composition root
// (src/start.ts) and handed in here.
import type { Redis } from 'ioredis';
import type { LoadedFleet } from '../config/load-fleet.js';
import { Closers } from '../lifecycle.js';
import type { FencedLock } from '../locks/fenced-lock.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { queuesForHost } from '../queues/placement.js';
import type { QueueSet } from '../queues/queue-set.js';
import type { Registry } from '../registry/index.js';
import { cancelChannel, drainChannel } from '../queues/redis-names.js';
import { ChannelListener } from './channel-listener.js';
import { Consumers } from './consumers.js';
import { discoverGpus } from './gpu-discovery.js';
import { DEFAULT_HOST_WORKER_OPTIONS, HostWorker, type HostWorkerDeps, type HostWorkerOptions } from './host-worker.js';

/** The connections the workers of a process use; the composition root opens and closes them. */
export interface WorkerConnections {
  /** Commands: consumers, heartbeats, job bookkeeping. Waits while Redis is away. */
  redis: Redis;
  /** Subscribed to the cancel and drain channels. */
  subscriber: Redis;
  /** One per host worker, for its BZPOPMIN. */
  blocking: ReadonlyMap<string, Redis>;
}

export interface WorkersDeps {
  fleet: LoadedFleet;
  hostIds: string[];
  connections: WorkerConnections;
  registry: Registry;
  locks: FencedLock;
  /** For jobs that enqueue follow-up jobs (a checkpoint's validation). */
  queues: QueueSet;
  metrics: Metrics;
  prefix: string;
  logger: Logger;
  baseEnv: Record<string, string>;
  dataDir: string;
  version: string;
  options?: Partial<HostWorkerOptions> & { stalledIntervalMs?: number };
  nvidiaSmi?: string;
  onDecision?: HostWorkerDeps['onDecision'];
}

export interface RunningWorkers {
  workers: HostWorker[];
  close(): Promise<void>;
}

export async function startWorkers(deps: WorkersDeps): Promise<RunningWorkers> {
  const closers = new Closers(deps.logger);
  const options: HostWorkerOptions = { ...DEFAULT_HOST_WORKER_OPTIONS, ...deps.options };
  const { redis, subscriber } = deps.connections;
  try {
    const consumers = new Consumers(
      redis,
      deps.prefix,
      { lockDurationMs: options.lockDurationMs, stalledIntervalMs: deps.options?.stalledIntervalMs ?? 30_000 },
      deps.logger,
    );
    closers.add('consumers', () => consumers.close());

    const workers: HostWorker[] = [];
    const cancels = await ChannelListener.start(subscriber, cancelChannel(deps.prefix), (jobId) => workers.forEach((w) => w.cancel(jobId)), deps.logger);
    closers.add('cancel listener', () => cancels.close());
    const drains = await ChannelListener.start(subscriber, drainChannel(deps.prefix), (host) => workers.forEach((w) => w.drainsChanged(host)), deps.logger);
    closers.add('drain listener', () => drains.close());

    // All host workers close together, so one host's grace period does not wait on another's.
    closers.add('host workers', () => Promise.all(workers.map((w) => w.close())).then(() => undefined));
    for (const hostId of deps.hostIds) {
      const host = deps.fleet.hosts[hostId];
      if (!host) throw new Error(`unknown host "${hostId}"`);
      const blocking = deps.connections.blocking.get(hostId);
      if (!blocking) throw new Error(`no blocking connection was opened for host "${hostId}"`);
      // Every series an alert takes increase() of exists from the start at 0: increase() cannot
      // see the first failure of a series that the failure itself creates.
      for (const spec of queuesForHost(deps.fleet, hostId)) deps.metrics.jobFailedForGood.inc({ kind: spec.kind, model: spec.model ?? '' }, 0);
      const discovery = await discoverGpus(host.gpus, deps.logger.child({ host: hostId }), deps.nvidiaSmi);
      const worker = new HostWorker({
        hostId,
        gpus: discovery.gpus,
        gpuSource: discovery.source,
        ...(discovery.nvidiaSmi ? { nvidiaSmi: discovery.nvidiaSmi } : {}),
        cpuSlots: host.cpuSlots,
        fleet: deps.fleet,
        served: queuesForHost(deps.fleet, hostId),
        consumers,
        registry: deps.registry,
        locks: deps.locks,
        metrics: deps.metrics,
        queues: deps.queues,
        redis,
        blocking,
        prefix: deps.prefix,
        logger: deps.logger,
        baseEnv: deps.baseEnv,
        dataDir: deps.dataDir,
        version: deps.version,
        options,
        ...(deps.onDecision ? { onDecision: deps.onDecision } : {}),
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
