// The dispatch policy's snapshot of one host, filled from Redis: what the host worker knows
// itself (capacity, its running jobs, the standing hold) and, read straight from BullMQ's keys
// (see redis-names.ts), when the next job of each queue the policy asks about was enqueued (and
// its params and priority class), with the pool's reservations of those queues and their learned
// durations. The reads go out together (one round trip for heads and reservations, one for the
// heads' fields); none when the policy needs no head; duration lists at most every few seconds
// (durations.ts). The snapshot itself is assembled by the policy (policy/assemble.ts), as the
// simulator's is.
import type { Redis } from 'ioredis';
import { classRank, isPriorityClass, type PriorityClass } from '../config/priority-class.js';
import { asPolicyReservation, readReservations } from '../queues/reservations.js';
import { jobKey, waitKey } from '../queues/redis-names.js';
import type { DurationBook } from './durations.js';
import { paramsDigest } from './durations.js';
import { assembleSnapshot, couldBePreempted, headsToRead, pooled, type DispatchPolicy, type DispatchSnapshot, type Head, type HostView, type PoolReservation, type RunningFacts } from './policy/index.js';

export type { Head, RunningFacts } from './policy/index.js';

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

/**
 * Each queue's head job (id, enqueue time, params digest, priority class rank); undefined for a
 * queue with nothing waiting. `classOf` gives a queue's class when the payload names none.
 */
export async function readHeads(
  redis: Redis,
  prefix: string,
  queues: readonly string[],
  classOf: (queue: string) => PriorityClass | undefined = () => undefined,
): Promise<Map<string, Head | undefined>> {
  if (queues.length === 0) return new Map();
  const ids = await Promise.all(queues.map((q) => redis.lindex(waitKey(prefix, q), -1)));
  const fields = await Promise.all(queues.map((q, i) => (ids[i] ? redis.hmget(jobKey(prefix, q, ids[i]!), 'timestamp', 'data') : Promise.resolve(null))));
  return new Map(
    queues.map((q, i) => {
      const f = fields[i];
      if (!f?.[0]) return [q, undefined];
      let params: string | undefined;
      let payloadClass: unknown;
      try {
        const payload = f[1] ? (JSON.parse(f[1]) as { payload?: { priorityClass?: unknown } }).payload : undefined;
        params = paramsDigest(payload);
        payloadClass = payload?.priorityClass;
      } catch {
        params = undefined; // a job whose data is not JSON is estimated by its queue alone
      }
      const queueClass = classOf(q);
      const rank = queueClass ? classRank(isPriorityClass(payloadClass) ? payloadClass : queueClass) : undefined;
      return [q, { id: ids[i]!, at: Number(f[0]), ...(params ? { params } : {}), ...(rank !== undefined ? { classRank: rank } : {}) }];
    }),
  );
}

/** The view with the heads, running jobs, reservations and estimates the policy needs, timed after they were read. */
export async function readSnapshot(src: SnapshotSource, view: HostView, running: readonly RunningFacts[]): Promise<DispatchSnapshot> {
  // Only the most urgent class preempts nothing: while a training of another class runs here, a
  // waiting job may need this host even with no GPU free, so the heads are read then too.
  const names = headsToRead(view, couldBePreempted(src.policy, running, classRank('urgent')));
  const [heads, stored] = await Promise.all([
    readHeads(src.redis, src.prefix, names, src.classOf),
    pooled(src.policy) ? readReservations(src.redis, src.prefix, names) : Promise.resolve(new Map()),
  ]);
  if (pooled(src.policy)) {
    const gpuQueues = view.queues.filter((q) => q.gpus > 0);
    await src.durations.refresh([
      ...gpuQueues.map((q) => ({ queue: q.name, ...(heads.get(q.name)?.params ? { params: heads.get(q.name)!.params } : {}) })),
      ...running.map((r) => ({ queue: r.queue, ...(r.params ? { params: r.params } : {}) })),
    ]);
  }
  return assembleSnapshot(view, running, {
    now: Date.now(),
    host: src.host,
    policy: src.policy,
    starvationGuardMs: src.starvationGuardMs,
    backfillOverrunMs: src.backfillOverrunMs,
    preemptAfterMs: src.preemptAfterMs,
    preemptIntervalMs: src.preemptIntervalMs,
    heads,
    reservations: new Map<string, PoolReservation>([...stored].map(([q, r]) => [q, asPolicyReservation(r)])),
    estimate: (queue, params) => src.durations.estimate(queue, params),
  });
}
