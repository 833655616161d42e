// The starvation rule. When the oldest waiting job of a GPU queue cannot start because too few
// GPUs are free, and it has waited at least the guard, GPUs are held for that queue: the holding
// host starts no job of any other GPU queue until a job of that queue has started (CPU queues go
// on; with backfill, see backfill.ts, a job expected to end in time may use the held GPUs). Freed
// GPUs therefore accumulate until the big job fits, so a 2-GPU job cannot be starved by a stream
// of 1-GPU jobs.
//
// Who holds: with the `host` policy every host of the pool on its own, so a pool idles GPUs on all
// of its hosts for one job. With `pool` and `backfill`, one host: the one expected to have enough
// GPUs free soonest. The reservation is stored per queue (the host worker keeps it in Redis with
// a lease; the simulator in memory) and a host takes it only when nobody holds it, or when its
// own expected start beats the holder's by TAKEOVER_MARGIN_MS (claimWins: the same rule the
// Redis claim applies). A holder that dies stops renewing its lease and another host takes over.
import { expectedStart } from './estimates.js';
import { victimsFor } from './preemption.js';
import { byPriority, couldEverFit, fits, type DispatchSnapshot, type PoolReservation, type QueueState } from './snapshot.js';

/** How much sooner a host must expect to start a reserved job to take the reservation over. */
export const TAKEOVER_MARGIN_MS = 1_000;

/** GPUs held on this host for a queue's head job, and when the host expects enough of them free. */
export interface Hold {
  queue: string;
  expectedStartAt: number;
  jobId?: string;
}

/** Whether a queue may not start a job because GPUs are held for another (without backfill). */
export function heldBack(queue: QueueState, reservedFor: string | undefined): boolean {
  return reservedFor !== undefined && queue.gpus > 0 && queue.name !== reservedFor;
}

/** Whether `bid` (by `host`) takes a queue's reservation from `current` (undefined: nobody holds it). */
export function claimWins(current: PoolReservation | undefined, host: string, bidAt: number): boolean {
  return current === undefined || current.host === host || bidAt + TAKEOVER_MARGIN_MS < current.expectedStartAt;
}

/**
 * Whether `next` must be claimed in the store rather than left standing as `previous` was claimed:
 * a new hold, another queue or job, or an expected start that moved by more than half the
 * takeover margin (smaller moves cannot change who wins a claim by much; the heartbeat renews).
 */
export function claimDue(previous: Hold | undefined, next: Hold): boolean {
  return (
    !previous ||
    previous.queue !== next.queue ||
    previous.jobId !== next.jobId ||
    Math.abs(previous.expectedStartAt - next.expectedStartAt) > TAKEOVER_MARGIN_MS / 2
  );
}

/** The GPU queue to hold GPUs for on this host, per the rule above; undefined: none. */
export function hold(snapshot: DispatchSnapshot): Hold | undefined {
  switch (snapshot.policy) {
    case 'none':
      return undefined;
    case 'host':
      return hostHold(snapshot);
    default:
      return poolHold(snapshot);
  }
}

/** The queue of `hold`, for callers that need no more. */
export function reservation(snapshot: DispatchSnapshot): string | undefined {
  return hold(snapshot)?.queue;
}

function held(snapshot: DispatchSnapshot, q: QueueState): Hold {
  // A host that can free the GPUs by preempting lower-class jobs expects to start the job now.
  const preempting = snapshot.policy !== 'host' && victimsFor(snapshot, q).length > 0;
  const at = preempting ? snapshot.now : expectedStart(q.gpus, snapshot.capacity, snapshot.running ?? [], snapshot.now);
  return { queue: q.name, expectedStartAt: at, ...(q.headId ? { jobId: q.headId } : {}) };
}

/** Blocked here: it has a head this host could run some day, but not now. */
function blocked(snapshot: DispatchSnapshot, q: QueueState): boolean {
  return q.gpus > 0 && q.headAt !== undefined && !fits(snapshot.capacity, q) && couldEverFit(snapshot.capacity, q);
}

function starving(snapshot: DispatchSnapshot, q: QueueState): boolean {
  return blocked(snapshot, q) && snapshot.now - q.headAt! >= snapshot.starvationGuardMs;
}

/** Blocked queues, oldest head first; among equally old, the first in serving order. */
function oldestFirst(snapshot: DispatchSnapshot): QueueState[] {
  return byPriority(snapshot.queues)
    .filter((q) => blocked(snapshot, q))
    .sort((a, b) => a.headAt! - b.headAt!);
}

function hostHold(snapshot: DispatchSnapshot): Hold | undefined {
  const { capacity, reservedFor, queues } = snapshot;
  // A reservation stands until a job of its queue starts (afterStart) or the queue has nothing
  // waiting. Dropping it as soon as enough GPUs are free would hand them to a smaller job of
  // another queue first, and the big one would wait again.
  const standing = queues.find((q) => q.name === reservedFor);
  if (standing?.headAt !== undefined) return held(snapshot, standing);
  if (capacity.gpusFree === 0) return undefined;
  const oldest = oldestFirst(snapshot)[0];
  return oldest && starving(snapshot, oldest) ? held(snapshot, oldest) : undefined;
}

function poolHold(snapshot: DispatchSnapshot): Hold | undefined {
  const host = snapshot.host ?? '';
  const reservations = snapshot.reservations ?? new Map<string, PoolReservation>();
  // The standing hold lasts while its job still waits (and has waited the guard: a head that
  // came after another host started the starved one is not starved) or fits here now (it starts
  // next), unless another host has taken the reservation over.
  const standing = snapshot.queues.find((q) => q.name === snapshot.reservedFor);
  if (standing?.headAt !== undefined && (fits(snapshot.capacity, standing) || starving(snapshot, standing))) {
    const current = reservations.get(standing.name);
    if (current === undefined || current.host === host) return held(snapshot, standing);
  }
  for (const q of oldestFirst(snapshot)) {
    if (!starving(snapshot, q)) break;
    const bid = held(snapshot, q);
    if (claimWins(reservations.get(q.name), host, bid.expectedStartAt)) return bid;
  }
  return undefined;
}

/** The reservation once a job of `started` has started: the job it was held for has its GPUs. */
export function afterStart(reservedFor: string | undefined, started: string): string | undefined {
  return reservedFor === started ? undefined : reservedFor;
}

/**
 * When a decision over this snapshot would change with no event: the next blocked head to reach
 * the guard. Undefined: only an event (a job ends, arrives, a hold changes) changes it.
 */
export function guardWakeAt(snapshot: DispatchSnapshot): number | undefined {
  const at = oldestFirst(snapshot)
    .map((q) => q.headAt! + snapshot.starvationGuardMs)
    .filter((t) => t > snapshot.now);
  return at.length ? Math.min(...at) : undefined;
}
