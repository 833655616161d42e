// The order in which a host tries its queues: by kind priority (data sync, then training and
// deploy tests, then backtests); within one priority, the GPU queue whose waiting job is oldest
// first (config order would let the first-listed model's jobs always go ahead of a bigger
// model's); then config order.
import { heldBack } from './reservation.js';
import { byPriority, couldEverFit, fits, type HostView, type QueueState } from './snapshot.js';

/**
 * Queues that could start a job now and are not held back by `snapshot.reservedFor`, in priority
 * order (without backfill, which needs heads and the clock).
 */
export function serveableQueues(snapshot: HostView): QueueState[] {
  return byPriority(snapshot.queues).filter((q) => fits(snapshot.capacity, q) && !heldBack(q, snapshot.reservedFor));
}

/** `candidates` sorted as said above; `queues` (config order) breaks ties. */
export function sortForFill(candidates: readonly QueueState[], queues: readonly QueueState[]): QueueState[] {
  const config = new Map(queues.map((q, i) => [q.name, i]));
  const age = (q: QueueState) => (q.gpus > 0 ? (q.headAt ?? Infinity) : Infinity);
  return byPriority(candidates).sort((a, b) => b.priority - a.priority || age(a) - age(b) || config.get(a.name)! - config.get(b.name)!);
}

/** Queues to try for one start, in order: the serveable ones, sorted as said above. */
export function fillOrder(snapshot: HostView): QueueState[] {
  return sortForFill(serveableQueues(snapshot), snapshot.queues);
}

/**
 * The queues whose heads a decision over this snapshot needs (read them, leave the rest
 * undefined): every GPU queue this host could ever run while a GPU is free (for the order and
 * for a new reservation), else only the reserved one (to see whether it stands). `preemptable`:
 * a running job here could be preempted, so a waiting job may need the host even while no GPU is
 * free: then every GPU queue is read too.
 */
export function headsToRead(snapshot: HostView, preemptable = false): string[] {
  const { capacity, reservedFor } = snapshot;
  const full = capacity.gpusFree === 0 && !preemptable;
  const names = full ? [] : snapshot.queues.filter((q) => q.gpus > 0 && couldEverFit(capacity, q)).map((q) => q.name);
  if (reservedFor !== undefined && !names.includes(reservedFor)) names.push(reservedFor);
  return names;
}
