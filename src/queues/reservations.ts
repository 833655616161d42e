// Pool-wide reservations in Redis: one key per GPU queue naming the host that holds GPUs for the
// queue's head job and when it expects enough of them free (the policy's `Hold`, see
// src/workers/policy/reservation.ts). The key has a lease the holder renews on every dispatch
// pass and heartbeat, so the reservation of a host that dies lapses and another host takes it.
// The claim is one script, so two hosts bidding at once cannot both win: it applies the
// policy's claimWins rule (nobody holds it, the bidder already does, or the bid beats the
// holder's expected start by the takeover margin).
import type { Redis } from 'ioredis';
import { reservationKey } from './redis-names.js';

export interface StoredReservation {
  queue: string;
  host: string;
  instance: string;
  jobId?: string;
  /** ms since the epoch; null: unknown (stored as JSON, which has no Infinity). */
  expectedStartAt: number | null;
  /** When the holder last claimed or renewed it (ms). */
  at: number;
}

const CLAIM = `
local current = redis.call('GET', KEYS[1])
if current then
  local c = cjson.decode(current)
  if c.host ~= ARGV[1] then
    local held = tonumber(c.expectedStartAt) or math.huge
    local bid = tonumber(ARGV[3]) or math.huge
    if not (bid + tonumber(ARGV[4]) < held) then return current end
  end
end
redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[5])
return ARGV[2]`;

const RELEASE = `
local current = redis.call('GET', KEYS[1])
if current and cjson.decode(current).host == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0`;

/** The reservation as the policy sees it (Infinity for an unknown start). */
export function asPolicyReservation(r: StoredReservation) {
  return { queue: r.queue, host: r.host, ...(r.jobId ? { jobId: r.jobId } : {}), expectedStartAt: r.expectedStartAt ?? Infinity };
}

/** Claims or renews `bid`; returns the reservation that stands after it (the bid's when it won). */
export async function claimReservation(
  redis: Redis,
  prefix: string,
  bid: Omit<StoredReservation, 'at'>,
  marginMs: number,
  leaseMs: number,
): Promise<StoredReservation> {
  const record: StoredReservation = { ...bid, at: Date.now() };
  const standing = (await redis.eval(
    CLAIM,
    1,
    reservationKey(prefix, bid.queue),
    bid.host,
    JSON.stringify(record),
    bid.expectedStartAt === null ? '' : String(bid.expectedStartAt),
    String(marginMs),
    String(leaseMs),
  )) as string;
  return JSON.parse(standing) as StoredReservation;
}

/** Gives a reservation up, if `host` holds it. */
export async function releaseReservation(redis: Redis, prefix: string, queue: string, host: string): Promise<void> {
  await redis.eval(RELEASE, 1, reservationKey(prefix, queue), host);
}

/** The standing reservations of these queues, by queue. */
export async function readReservations(redis: Redis, prefix: string, queues: readonly string[]): Promise<Map<string, StoredReservation>> {
  if (queues.length === 0) return new Map();
  const values = await redis.mget(...queues.map((q) => reservationKey(prefix, q)));
  const out = new Map<string, StoredReservation>();
  values.forEach((v, i) => {
    if (v) out.set(queues[i]!, JSON.parse(v) as StoredReservation);
  });
  return out;
}
