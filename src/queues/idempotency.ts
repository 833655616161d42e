// Idempotent enqueues: a client that sends `Idempotency-Key` gets, for every retry of one request,
// the job the first attempt made, never a second one. That is what makes a 503 safe to retry
// (the first attempt may have written the job and only missed its replica acknowledgement).
//
// The key maps, per token (two callers' keys never meet), to the job id and a digest of the
// request, for a day. The mapping is written on the enqueue connection before the job, so it is
// earlier in the replication stream: a failover that keeps the job keeps the mapping too.
import { createHash } from 'node:crypto';
import type { Redis } from 'ioredis';
import { ConflictError, ValidationError } from '../errors.js';
import { idempotencyKey } from './redis-names.js';

export const IDEMPOTENCY_TTL_MS = 24 * 3600_000;
export const IDEMPOTENCY_HEADER = 'idempotency-key';

export interface IdempotentRequest {
  /** The client's key, as sent. */
  key: string;
  /** Who sent it (the token's name): keys are scoped to it. */
  by: string;
}

/** The header's value, checked: 1-255 printable characters (a UUID is the usual choice). */
export function idempotencyKeyOf(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined;
  const value = Array.isArray(header) ? header.join(',') : header;
  if (!/^[\x21-\x7e]{1,255}$/.test(value)) {
    throw new ValidationError('invalid Idempotency-Key header', [{ path: 'Idempotency-Key', message: 'must be 1-255 printable characters without spaces (a UUID, say)' }]);
  }
  return value;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** The job-id suffix a key names: derived, so the same key and token give the same job id. */
export const idempotentSuffix = (req: IdempotentRequest) => `key-${sha256(`${req.by}\n${req.key}`).slice(0, 40)}`;

/**
 * Records the key for this request (its job id and digest) unless it is recorded already, and
 * throws ConflictError when it was recorded for a different request.
 */
export async function recordIdempotencyKey(redis: Redis, prefix: string, req: IdempotentRequest, jobId: string, request: unknown): Promise<void> {
  const key = idempotencyKey(prefix, sha256(`${req.by}\n${req.key}`));
  const digest = sha256(JSON.stringify(request));
  const created = await redis.set(key, JSON.stringify({ jobId, digest }), 'PX', IDEMPOTENCY_TTL_MS, 'NX');
  if (created === 'OK') return;
  const recorded = JSON.parse((await redis.get(key)) ?? '{}') as { jobId?: string; digest?: string };
  if (recorded.digest !== undefined && recorded.digest !== digest) {
    throw new ConflictError(`Idempotency-Key "${req.key}" was used for a different request (job ${recorded.jobId}); send a new key with a new request`);
  }
}
