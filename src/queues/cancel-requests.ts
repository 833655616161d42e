// Cancelling a running job must reach the worker that holds it, usually on another machine.
// The request is a Redis key (so a worker that has just dequeued the job sees it before the
// child starts) plus a pub/sub message (so a worker with the child running hears it at once).
import type { Redis } from 'ioredis';
import { cancelChannel, cancelKey } from './redis-names.js';

const TTL_SECONDS = 7 * 24 * 3600;


export interface CancelRequest {
  by: string;
  at: string;
}

export async function requestCancel(redis: Redis, prefix: string, jobId: string, by: string): Promise<void> {
  const request: CancelRequest = { by, at: new Date().toISOString() };
  await redis
    .multi()
    .set(cancelKey(prefix, jobId), JSON.stringify(request), 'EX', TTL_SECONDS)
    .publish(cancelChannel(prefix), jobId)
    .exec();
}

export async function cancelRequestOf(redis: Redis, prefix: string, jobId: string): Promise<CancelRequest | undefined> {
  const raw = await redis.get(cancelKey(prefix, jobId));
  return raw ? (JSON.parse(raw) as CancelRequest) : undefined;
}

export async function clearCancelRequest(redis: Redis, prefix: string, jobId: string): Promise<void> {
  await redis.del(cancelKey(prefix, jobId));
}
