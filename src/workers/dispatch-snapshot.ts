// The dispatch policy's snapshot of one host, filled from Redis: what the host worker knows
// itself (capacity, its running jobs, the standing hold) and, read straight from BullMQ's keys
// (see redis-names.ts), when the next job of each queue the policy asks about was enqueued, with
// the pool's reservations of those queues and their learned durations. The reads go out together
// (one round trip for heads and reservations, one for the heads' fields); none when the policy
// needs no head; duration lists at most every few seconds (durations.ts).
import type { Redis } from 'ioredis';
import { asPolicyReservation, readReservations } from '../queues/reservations.js';
import { jobKey, waitKey } from '../queues/redis-names.js';
import { classRank, PRIORITY_CLASSES, type PriorityClass } from '../config/priority-class.js';
import type { DurationBook } from './durations.js';
import { paramsDigest } from './durations.js';
import { expectedEnd, headsToRead, type DispatchPolicy, type DispatchSnapshot, type HostView, type PoolReservation, type ProgressPoint, type RunningGpuJob } from './policy/index.js';

export interface Head {
  id: string;
  at: number;
  params?: string;
  /** The payload's priority class, when it sets one. */
  priorityClass?: string;
}

/** A GPU job running on the host, as the worker knows it. */
export interface RunningFacts {
  id: string;
  queue: string;
  gpus: number;
  params?: string;
  startedAt: number;
  percent?: number;
  firstProgress?: ProgressPoint;
  lastProgress?: ProgressPoint;
  timeoutMs?: number;
  backfillDeadlineAt?: number;
  classRank?: number;
  lastCheckpointAt?: number;
  preemptedAt?: number;
  stopping?: boolean;
}

export interface SnapshotSource {
  redis: Redis;
  prefix: string;
  host: string;
  policy: DispatchPolicy;
  starvationGuardMs: number;
  backfillOverrunMs: number;
  preemptAfterMs: number;
  preemptIntervalMs: number;
  durations: DurationBook;
  /** The priority class of a queue's jobs (its model's) when the payload sets none; undefined: not a training queue. */
  classOf(queue: string): PriorityClass | undefined;
}

/** Each queue's head job (id, enqueue time, params digest); undefined for a queue with nothing waiting. */
export async function readHeads(redis: Redis, prefix: string, queues: readonly string[]): Promise<Map<string, Head | undefined>> {
  if (queues.length === 0) return new Map();
  const ids = await Promise.all(queues.map((q) => redis.lindex(waitKey(prefix, q), -1)));
  const fields = await Promise.all(queues.map((q, i) => (ids[i] ? redis.hmget(jobKey(prefix, q, ids[i]!), 'timestamp', 'data') : Promise.resolve(null))));
  return new Map(
    queues.map((q, i) => {
      const f = fields[i];
      if (!f?.[0]) return [q, undefined];
      let params: string | undefined;
      let priorityClass: unknown;
      try {
        const payload = f[1] ? (JSON.parse(f[1]) as { payload?: { priorityClass?: unknown } }).payload : undefined;
        params = paramsDigest(payload);
        priorityClass = payload?.priorityClass;
      } catch {
        params = undefined; // a job whose data is not JSON is estimated by its queue alone
      }
      return [q, { id: ids[i]!, at: Number(f[0]), ...(params ? { params } : {}), ...(typeof priorityClass === 'string' ? { priorityClass } : {}) }];
    }),
  );
}

/** The view with the heads, running jobs, reservations and estimates the policy needs, timed after they were read. */
export async function readSnapshot(src: SnapshotSource, view: HostView, running: readonly RunningFacts[]): Promise<DispatchSnapshot> {
  const pooled = src.policy === 'pool' || src.policy === 'backfill';
  // Only the most urgent class preempts nothing; any other running training might be preempted.
  const preemptable = pooled && running.some((r) => r.classRank !== undefined && r.classRank < classRank('urgent') && !r.stopping);
  const names = headsToRead(view, preemptable);
  const [heads, stored] = await Promise.all([
    readHeads(src.redis, src.prefix, names),
    pooled ? readReservations(src.redis, src.prefix, names) : Promise.resolve(new Map()),
  ]);
  const needsEstimates = src.policy === 'backfill' || pooled;
  if (needsEstimates) {
    const gpuQueues = view.queues.filter((q) => q.gpus > 0);
    await src.durations.refresh([
      ...gpuQueues.map((q) => ({ queue: q.name, ...(heads.get(q.name)?.params ? { params: heads.get(q.name)!.params } : {}) })),
      ...running.map((r) => ({ queue: r.queue, ...(r.params ? { params: r.params } : {}) })),
    ]);
  }
  const now = Date.now();
  const queues = view.queues.map((q) => {
    const head = heads.get(q.name);
    const estimateMs = needsEstimates && q.gpus > 0 ? src.durations.estimate(q.name, head?.params) : undefined;
    const queueClass = src.classOf(q.name);
    const headClass = head && queueClass ? classRank(isPriorityClass(head.priorityClass) ? head.priorityClass : queueClass) : undefined;
    return {
      ...q,
      ...(heads.has(q.name) ? { headAt: head?.at, ...(head ? { headId: head.id } : {}) } : {}),
      ...(headClass !== undefined ? { headClass } : {}),
      ...(estimateMs !== undefined ? { estimateMs } : {}),
    };
  });
  const runningJobs: RunningGpuJob[] = running.map((r) => ({
    id: r.id,
    queue: r.queue,
    gpus: r.gpus,
    // A job being stopped gives its GPUs back within its grace: as good as now.
    expectedEndAt: r.stopping ? now : expectedEnd({ ...r, estimateMs: src.durations.estimate(r.queue, r.params) }, now),
    ...(r.backfillDeadlineAt !== undefined ? { backfillDeadlineAt: r.backfillDeadlineAt } : {}),
    ...(r.classRank !== undefined ? { classRank: r.classRank } : {}),
    ...(r.lastCheckpointAt !== undefined ? { lastCheckpointAt: r.lastCheckpointAt } : {}),
    ...(r.preemptedAt !== undefined ? { preemptedAt: r.preemptedAt } : {}),
    ...(r.stopping ? { stopping: true } : {}),
  }));
  const reservations = new Map<string, PoolReservation>([...stored].map(([q, r]) => [q, asPolicyReservation(r)]));
  return {
    ...view,
    queues,
    now,
    host: src.host,
    policy: src.policy,
    running: runningJobs,
    reservations,
    starvationGuardMs: src.starvationGuardMs,
    backfillOverrunMs: src.backfillOverrunMs,
    preemptAfterMs: src.preemptAfterMs,
    preemptIntervalMs: src.preemptIntervalMs,
  };
}

function isPriorityClass(value: unknown): value is PriorityClass {
  return (PRIORITY_CLASSES as readonly unknown[]).includes(value);
}
