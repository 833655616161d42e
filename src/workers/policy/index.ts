// The dispatch policy of a host: which queue to take the next job from, when to hold GPUs for a
// big job, and which smaller jobs may use held GPUs meanwhile. Pure functions over a snapshot
// (snapshot.ts) of the host's capacity, its running jobs, the heads of its queues and the pool's
// reservations: no Redis, no timers, no clock (the time comes in the snapshot), so the host
// worker and the simulator (bench/simulate/, virtual clock) run the same decisions, and a test
// can pin one.
//
// The host worker reads the heads that headsToRead names, calls decide, claims or renews the
// hold's pool reservation, stops the overdue backfills, carries out the order (getNextJob on its
// queues, in turn), and after a start takes a fresh snapshot.
import { admission, deadlineWakeAt, overdue, type Admission } from './backfill.js';
import { preemptWakeAt, preemptions } from './preemption.js';
import { guardWakeAt, hold, type Hold } from './reservation.js';
import { sortForFill } from './serving-order.js';
import { fits, type DispatchSnapshot, type QueueState } from './snapshot.js';

export { admission, DEFAULT_BACKFILL_OVERRUN_MS, overdue } from './backfill.js';
export { couldBePreempted, mayPreempt, preemptions, victimsFor } from './preemption.js';
export { assembleSnapshot, pooled, type Head, type RunningFacts, type SnapshotReads } from './assemble.js';
export { endBound, estimateFromSamples, expectedEnd, expectedStart, freeAt, ESTIMATE_PERCENTILE, MIN_SAMPLES, type ProgressPoint, type RunFacts } from './estimates.js';
export { afterStart, claimDue, claimWins, heldBack, hold, reservation, TAKEOVER_MARGIN_MS, type Hold } from './reservation.js';
export { fillOrder, headsToRead, serveableQueues, sortForFill } from './serving-order.js';
export {
  byPriority,
  couldEverFit,
  fits,
  type DispatchPolicy,
  type DispatchSnapshot,
  type HostCapacity,
  type HostView,
  type PoolReservation,
  type QueueState,
  type RunningGpuJob,
} from './snapshot.js';

export interface DispatchDecision {
  /** The queue GPUs are held for on this host from now on; undefined: none. */
  reservedFor: string | undefined;
  /** That hold with its expected start: the pool reservation to claim or renew. */
  hold?: Hold;
  /** The queues to try for the next start, in order. */
  order: QueueState[];
  /** Queues of `order` whose job starts as a backfill, with the time it must have ended by. */
  backfill: Map<string, number>;
  /** Running backfilled jobs to hand back now: they overran and the reserved job waits for them. */
  stop: string[];
  /** Running jobs of a lower class to preempt now for the held job (preemption.ts). */
  preempt: string[];
  /** When to decide again if nothing happens before (ms); undefined: on the next event. */
  wakeAt?: number;
}

export function decide(snapshot: DispatchSnapshot): DispatchDecision {
  const h = hold(snapshot);
  const admitted = new Map<string, Admission>();
  for (const q of snapshot.queues) {
    if (!fits(snapshot.capacity, q)) continue;
    const a = admission(q, snapshot, h);
    if (a) admitted.set(q.name, a);
  }
  const order = sortForFill(
    snapshot.queues.filter((q) => admitted.has(q.name)),
    snapshot.queues,
  );
  const backfill = new Map<string, number>();
  for (const [name, a] of admitted) if (a.deadlineAt !== undefined) backfill.set(name, a.deadlineAt);
  const wakes = [guardWakeAt(snapshot), h ? deadlineWakeAt(snapshot) : undefined, h ? preemptWakeAt(snapshot, h) : undefined].filter(
    (t): t is number => t !== undefined,
  );
  return {
    reservedFor: h?.queue,
    ...(h ? { hold: h } : {}),
    order,
    backfill,
    stop: overdue(snapshot, h),
    preempt: preemptions(snapshot, h),
    ...(wakes.length ? { wakeAt: Math.min(...wakes) } : {}),
  };
}
