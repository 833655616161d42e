// Preemption by priority class. When the job GPUs are held for on this host is of a higher class
// than some running jobs here, has waited at least preemptAfterMs since it was enqueued and still
// does not fit, the host stops the fewest such jobs that free enough GPUs: lowest class first,
// then the most recently checkpointed (they lose least; a job that never checkpointed loses all,
// so it goes last). Never a job of the same or a higher class, never one preempted within
// preemptIntervalMs (it would thrash), and nothing at all when even all of them would not free
// enough. The stopped jobs get their stop grace, write a checkpoint and are handed back to resume
// later. Only the holding host preempts, so one pool never stops jobs on two hosts for one job;
// and a host that could free the GPUs by preempting bids to start the job now (reservation.ts),
// so the hold goes where preemption helps.
import type { Hold } from './reservation.js';
import { fits, type DispatchSnapshot, type QueueState, type RunningGpuJob } from './snapshot.js';

/** Whether the head of `queue` may preempt now: it is urgent enough and has waited long enough. */
export function mayPreempt(snapshot: DispatchSnapshot, queue: QueueState): boolean {
  const after = snapshot.preemptAfterMs;
  return after !== undefined && queue.headAt !== undefined && queue.headClass !== undefined && snapshot.now - queue.headAt >= after;
}

/** The running jobs to stop so `queue`'s head fits on this host, per the rule above; [] when none or not enough. */
export function victimsFor(snapshot: DispatchSnapshot, queue: QueueState): RunningGpuJob[] {
  if (!mayPreempt(snapshot, queue) || fits(snapshot.capacity, queue)) return [];
  const interval = snapshot.preemptIntervalMs ?? 0;
  const running = snapshot.running ?? [];
  const candidates = running
    .filter((r) => !r.stopping && r.classRank !== undefined && r.classRank < queue.headClass! && !(r.preemptedAt !== undefined && snapshot.now - r.preemptedAt < interval))
    .sort((a, b) => a.classRank! - b.classRank! || (b.lastCheckpointAt ?? -Infinity) - (a.lastCheckpointAt ?? -Infinity));
  const victims: RunningGpuJob[] = [];
  // Jobs already being stopped free their GPUs anyway: count them, and stop no more than needed.
  let free = running.reduce((n, r) => n + (r.stopping ? r.gpus : 0), snapshot.capacity.gpusFree);
  if (free >= queue.gpus) return [];
  for (const r of candidates) {
    if (free >= queue.gpus) break;
    victims.push(r);
    free += r.gpus;
  }
  return free >= queue.gpus ? victims : [];
}

/** The jobs to preempt for the hold standing on this host. */
export function preemptions(snapshot: DispatchSnapshot, hold: Hold | undefined): string[] {
  if (hold === undefined || snapshot.policy === 'none' || snapshot.policy === 'host') return [];
  const queue = snapshot.queues.find((q) => q.name === hold.queue);
  return queue ? victimsFor(snapshot, queue).map((r) => r.id) : [];
}

/** When the held job may start to preempt, if that is still ahead. */
export function preemptWakeAt(snapshot: DispatchSnapshot, hold: Hold): number | undefined {
  const queue = snapshot.queues.find((q) => q.name === hold.queue);
  if (snapshot.preemptAfterMs === undefined || queue?.headAt === undefined || queue.headClass === undefined) return undefined;
  const at = queue.headAt + snapshot.preemptAfterMs;
  return at > snapshot.now ? at : undefined;
}

/**
 * Whether a running training here could be preempted (one of a class below `topRank`, the most
 * urgent class, not already stopping): then a waiting job may need this host even while no GPU
 * is free, and its heads are read then too (headsToRead's `preemptable`).
 */
export function couldBePreempted(policy: DispatchSnapshot['policy'], running: readonly { classRank?: number; stopping?: boolean }[], topRank: number): boolean {
  return (policy === 'pool' || policy === 'backfill') && running.some((r) => r.classRank !== undefined && r.classRank < topRank && !r.stopping);
}
