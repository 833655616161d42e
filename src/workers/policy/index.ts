// The dispatch policy of a host: which queue to take the next job from, and when to hold GPUs for
// a big job. Pure functions over a snapshot (snapshot.ts) of the host's capacity and the heads of
// its queues: no Redis, no timers, no clock (the time comes in the snapshot), so the host worker
// and a simulator with a virtual clock run the same decisions, and a test can pin one.
//
// The host worker reads the heads that headsToRead names, calls decide, carries out the
// decision (getNextJob on the queues of `order`, in turn), and after a start takes a fresh snapshot.
import { reservation } from './reservation.js';
import { fillOrder } from './serving-order.js';
import type { DispatchSnapshot, QueueState } from './snapshot.js';

export { afterStart, heldBack, reservation } from './reservation.js';
export { fillOrder, headsToRead, serveableQueues } from './serving-order.js';
export { byPriority, couldEverFit, fits, type DispatchSnapshot, type HostCapacity, type HostView, type QueueState } from './snapshot.js';

export interface DispatchDecision {
  /** The queue GPUs are held for from now on; undefined: none. */
  reservedFor: string | undefined;
  /** The queues to try for the next start, in order. */
  order: QueueState[];
}

export function decide(snapshot: DispatchSnapshot): DispatchDecision {
  const reservedFor = reservation(snapshot);
  return { reservedFor, order: fillOrder({ ...snapshot, reservedFor }) };
}
