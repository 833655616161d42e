// Backfill (after Slurm's EASY backfill). While this host holds GPUs for a reserved job expected
// to start at S, a job of another GPU queue may start on its idle GPUs when either
// - the GPUs it takes are not needed at S: the reserved job still fits then, with every job
//   expected to have ended by S gone (no deadline); or
// - it is expected to end before S (its queue's learned duration; no history: never). It must
//   then be gone by S + the overrun allowance: a backfilled job still running then, while the
//   reserved job waits for exactly its GPUs, is handed back to its queue (overdue below). So a
//   backfilled job that overruns its estimate delays the reserved job by at most
//   backfillOverrunMs (plus the kill grace of its process group).
// An unknown expected start (a running job with neither progress, history nor timeout) admits
// nothing: with no history this is the plain reservation.
import { freeAt } from './estimates.js';
import type { Hold } from './reservation.js';
import { fits, type DispatchSnapshot, type QueueState } from './snapshot.js';

export const DEFAULT_BACKFILL_OVERRUN_MS = 30_000;

/** May start now; `deadlineAt`: it must have ended by then (undefined: no limit). */
export interface Admission {
  deadlineAt?: number;
}

/** Whether a job of `queue` may start on this host while `hold` stands, and under what deadline. */
export function admission(queue: QueueState, snapshot: DispatchSnapshot, hold: Hold | undefined): Admission | undefined {
  if (hold === undefined || queue.gpus === 0 || queue.name === hold.queue) return {};
  const reserved = snapshot.queues.find((q) => q.name === hold.queue);
  // A job enqueued before the one GPUs are held for, and of no lower priority class, is ahead of
  // it in line: it goes first, as it would with no hold (the pool policies; `host` keeps its old
  // rule for comparison). A job of a lower class is not, whatever its age: a preempted job keeps
  // its enqueue time, and must not take back the GPUs it was preempted for.
  const noLowerClass = queue.headClass === undefined || reserved?.headClass === undefined || queue.headClass >= reserved.headClass;
  if (snapshot.policy !== 'host' && noLowerClass && queue.headAt !== undefined && reserved?.headAt !== undefined && queue.headAt < reserved.headAt) return {};
  if (snapshot.policy !== 'backfill' || !Number.isFinite(hold.expectedStartAt)) return undefined;
  const need = reserved?.gpus ?? Infinity;
  if (freeAt(hold.expectedStartAt, snapshot.capacity, snapshot.running ?? []) - queue.gpus >= need) return {};
  if (queue.estimateMs !== undefined && snapshot.now + queue.estimateMs <= hold.expectedStartAt) {
    return { deadlineAt: hold.expectedStartAt + (snapshot.backfillOverrunMs ?? DEFAULT_BACKFILL_OVERRUN_MS) };
  }
  return undefined;
}

/**
 * Backfilled jobs past their deadline whose GPUs the reserved job is waiting for: ending them
 * (with those already free) lets it start. Jobs past their deadline that would not are left be.
 */
export function overdue(snapshot: DispatchSnapshot, hold: Hold | undefined): string[] {
  if (hold === undefined || snapshot.policy !== 'backfill') return [];
  const reserved = snapshot.queues.find((q) => q.name === hold.queue);
  if (!reserved || fits(snapshot.capacity, reserved)) return [];
  const late = (snapshot.running ?? []).filter((r) => r.backfillDeadlineAt !== undefined && r.backfillDeadlineAt <= snapshot.now);
  const freed = late.reduce((n, r) => n + r.gpus, snapshot.capacity.gpusFree);
  return freed >= reserved.gpus ? late.map((r) => r.id) : [];
}

/** The next backfill deadline still ahead, if any (a pass must run then to enforce it). */
export function deadlineWakeAt(snapshot: DispatchSnapshot): number | undefined {
  const at = (snapshot.running ?? []).map((r) => r.backfillDeadlineAt ?? Infinity).filter((t) => t > snapshot.now && t < Infinity);
  return at.length ? Math.min(...at) : undefined;
}
