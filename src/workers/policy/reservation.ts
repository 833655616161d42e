// The starvation rule. When the oldest waiting job of a GPU queue cannot start because too few
// GPUs are free, and it has waited at least the guard, the host holds its GPUs for that queue: it
// starts no job of any other GPU queue until a job of that queue has started (CPU queues go on).
// Freed GPUs therefore accumulate until the big job fits, so a 2-GPU job cannot be starved by a
// stream of 1-GPU jobs.
import { byPriority, couldEverFit, fits, type DispatchSnapshot, type QueueState } from './snapshot.js';

/** Whether a queue may not start a job because GPUs are held for another. */
export function heldBack(queue: QueueState, reservedFor: string | undefined): boolean {
  return reservedFor !== undefined && queue.gpus > 0 && queue.name !== reservedFor;
}

/** The GPU queue to hold GPUs for, per the rule above; undefined: none. */
export function reservation(snapshot: DispatchSnapshot): string | undefined {
  const { capacity, reservedFor, queues } = snapshot;
  // A reservation stands until a job of its queue starts (afterStart) or the queue has nothing
  // waiting. Dropping it as soon as enough GPUs are free would hand them to a smaller job of
  // another queue first, and the big one would wait again.
  if (reservedFor !== undefined && queues.find((q) => q.name === reservedFor)?.headAt !== undefined) return reservedFor;
  if (capacity.gpusFree === 0) return undefined;
  let oldest: { name: string; at: number } | undefined;
  // Among blocked queues whose heads are equally old, the first in serving order wins.
  for (const q of byPriority(queues)) {
    if (q.gpus === 0 || q.headAt === undefined || fits(capacity, q) || !couldEverFit(capacity, q)) continue;
    if (!oldest || q.headAt < oldest.at) oldest = { name: q.name, at: q.headAt };
  }
  if (!oldest || snapshot.now - oldest.at < snapshot.starvationGuardMs) return undefined;
  return oldest.name;
}

/** The reservation once a job of `started` has started: the job it was held for has its GPUs. */
export function afterStart(reservedFor: string | undefined, started: string): string | undefined {
  return reservedFor === started ? undefined : reservedFor;
}
