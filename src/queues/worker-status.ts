// Each worker publishes what it is and what it runs every few seconds, under a key that expires
// after three periods: a dead worker drops off `GET /api/workers` on its own.
import type { Redis } from 'ioredis';
import { workersLostKey, workerStatusKey, workersSetKey } from './redis-names.js';

/** How long a lost worker stays in the record of lost ones (for notifications that were down meanwhile). */
const LOST_KEPT_MS = 7 * 24 * 3600_000;

export interface RunningJobStatus {
  id: string;
  queue: string;
  kind: string;
  model?: string;
  startedAt: string;
  gpus: number[];
  progress?: unknown;
}

/** Why a worker does not lease one of its GPUs: a process that is not one of its jobs computes on it. */
export interface GpuBlock {
  pid: number;
  processName: string;
  reason: string;
}

/** Why an operator took a GPU (or a whole host) out of service: `POST /api/workers/{host}/drain`. */
export interface GpuDrain {
  reason: string;
  by: string;
  at: string;
}

/** Why a GPU failed its health check (nvidia-smi): ECC, retired pages, row remapping, XID, heat. */
export interface GpuUnhealthy {
  reasons: string[];
  since: string;
}

/** Why a GPU that no job holds is still not leased; each source is set and cleared on its own. */
export interface GpuHolds {
  blockedBy?: GpuBlock;
  drained?: GpuDrain;
  unhealthy?: GpuUnhealthy;
}

export type GpuStatus = { index: number; name: string; memoryMiB: number; uuid?: string; jobId: string | null } & GpuHolds;

/** Whether a job could lease this GPU now: nobody holds it and nothing keeps it out of service. */
export function gpuFree(gpu: GpuStatus): boolean {
  return gpu.jobId === null && !gpu.blockedBy && !gpu.drained && !gpu.unhealthy;
}

export interface WorkerStatus {
  host: string;
  instance: string;
  pid: number;
  version: string;
  startedAt: string;
  at: string;
  gpuSource: 'nvidia-smi' | 'config';
  gpus: GpuStatus[];
  cpuSlots: { total: number; used: number };
  queues: string[];
  running: RunningJobStatus[];
  /** The queue whose head job the host is holding GPUs for (see host-worker.ts). */
  reservedFor?: string;
  /** That hold: the job, and when the host expects enough GPUs free (null: unknown). */
  reservation?: { queue: string; jobId?: string; expectedStartAt: string | null };
  /** The whole host is drained: it starts no job (each GPU says so too). */
  drained?: GpuDrain;
}

export async function publishStatus(redis: Redis, prefix: string, status: WorkerStatus, ttlMs: number): Promise<void> {
  const member = `${status.host}:${status.instance}`;
  await redis
    .multi()
    .sadd(workersSetKey(prefix), member)
    .set(workerStatusKey(prefix, member), JSON.stringify(status), 'PX', ttlMs)
    .exec();
}

export async function withdrawStatus(redis: Redis, prefix: string, host: string, instance: string): Promise<void> {
  const member = `${host}:${instance}`;
  await redis.multi().srem(workersSetKey(prefix), member).del(workerStatusKey(prefix, member)).exec();
}

/**
 * Live workers, sorted by host. Members whose key expired (the worker stopped beating without
 * withdrawing: killed, hung, cut off) are pruned from the set and recorded as lost, so that the
 * notifier can tell of them whoever noticed first.
 */
export async function listWorkers(redis: Redis, prefix: string): Promise<WorkerStatus[]> {
  const members = await redis.smembers(workersSetKey(prefix));
  if (members.length === 0) return [];
  const values = await redis.mget(...members.map((m) => workerStatusKey(prefix, m)));
  const dead = members.filter((_, i) => values[i] === null);
  if (dead.length) {
    const now = Date.now();
    await redis
      .multi()
      .zadd(workersLostKey(prefix), 'NX', ...dead.flatMap((m) => [now, m]))
      .srem(workersSetKey(prefix), ...dead)
      .zremrangebyscore(workersLostKey(prefix), '-inf', now - LOST_KEPT_MS)
      .exec();
  }
  return values
    .filter((v): v is string => v !== null)
    .map((v) => JSON.parse(v) as WorkerStatus)
    .sort((a, b) => a.host.localeCompare(b.host) || a.instance.localeCompare(b.instance));
}

export interface LostWorker {
  host: string;
  instance: string;
  /** When its status was found expired (ms since the epoch). */
  noticedAt: number;
}

/** Workers recorded as lost since `sinceMs`, oldest first. */
export async function lostWorkersSince(redis: Redis, prefix: string, sinceMs: number): Promise<LostWorker[]> {
  const flat = await redis.zrangebyscore(workersLostKey(prefix), sinceMs, '+inf', 'WITHSCORES');
  const lost: LostWorker[] = [];
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const member = flat[i]!;
    const cut = member.lastIndexOf(':');
    lost.push({ host: member.slice(0, cut), instance: member.slice(cut + 1), noticedAt: Number(flat[i + 1]) });
  }
  return lost;
}
