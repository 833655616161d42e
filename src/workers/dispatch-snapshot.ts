// The dispatch policy's snapshot of one host, filled from Redis: what the host worker knows
// itself (capacity, the standing reservation) and, read straight from BullMQ's keys (see
// redis-names.ts), when the next job of each queue the policy asks about was enqueued. One round
// trip for the heads, one for their times; none when the policy needs no head.
import type { Redis } from 'ioredis';
import { jobKey, waitKey } from '../queues/redis-names.js';
import { headsToRead, type DispatchSnapshot, type HostView } from './policy/index.js';

/** Each queue's head job enqueue time (ms); undefined for a queue with nothing waiting. */
export async function readHeads(redis: Redis, prefix: string, queues: readonly string[]): Promise<Map<string, number | undefined>> {
  if (queues.length === 0) return new Map();
  const heads = await Promise.all(queues.map((q) => redis.lindex(waitKey(prefix, q), -1)));
  const stamps = await Promise.all(
    queues.map((q, i) => (heads[i] ? redis.hget(jobKey(prefix, q, heads[i]!), 'timestamp') : Promise.resolve(null))),
  );
  return new Map(queues.map((q, i) => [q, stamps[i] ? Number(stamps[i]) : undefined]));
}

/** The view with the heads the policy needs, timed after they were read. */
export async function readSnapshot(redis: Redis, prefix: string, view: HostView, starvationGuardMs: number): Promise<DispatchSnapshot> {
  const heads = await readHeads(redis, prefix, headsToRead(view));
  const queues = view.queues.map((q) => (heads.has(q.name) ? { ...q, headAt: heads.get(q.name) } : q));
  return { ...view, queues, now: Date.now(), starvationGuardMs };
}
