// What the dispatch policy decides from: one host's capacity, the jobs it runs, the queues it
// serves and the pool-wide reservations on them, as read at one moment. The host worker fills it
// from Redis; the simulator (bench/simulate/) fills it from its own model with a virtual clock.
// Plain data only, so a decision can be replayed, logged or pinned in a test.

/**
 * How a host keeps big jobs from starving (see reservation.ts):
 * - `none`: never holds GPUs; the oldest waiting job that fits goes first.
 * - `host`: each host on its own holds its GPUs for the oldest starved queue.
 * - `pool`: one host of the pool, the one expected to free enough GPUs soonest, holds them.
 * - `backfill`: `pool`, and the holding host lets a smaller job use its idle GPUs when that job is
 *   expected to end before the reservation's expected start (or uses GPUs the reserved job will
 *   not need then).
 */
import type { DispatchPolicy } from '../../config/dispatch-policy.js';

export type { DispatchPolicy } from '../../config/dispatch-policy.js';

export interface QueueState {
  name: string;
  /** Serving priority of the queue's kind (SERVING_PRIORITY); higher is served first. */
  priority: number;
  /** GPUs a job of this queue leases; 0: it takes a CPU slot instead. */
  gpus: number;
  /**
   * When the job that would be taken next was enqueued (ms, on the snapshot's clock). Undefined
   * when the queue has nothing waiting, or when no decision needs it and it was not read
   * (see headsToRead).
   */
  headAt?: number;
  /** The id of that job, when read. */
  headId?: string;
  /** Its priority class, as a rank (config/priority-class.ts: higher is more urgent), when read. */
  headClass?: number;
  /**
   * How long a job of this queue is expected to run (ms): a high percentile of the learned
   * durations (of the head job's own params when enough of those are known); undefined: no
   * history yet, so it may not backfill.
   */
  estimateMs?: number;
}

/** A GPU job running on this host. */
export interface RunningGpuJob {
  id: string;
  queue: string;
  gpus: number;
  /** When it is expected to end (ms; Infinity: unknown), see expectedEnd in estimates.ts. */
  expectedEndAt: number;
  /** Set when it started as a backfill: by when it must have ended not to delay the reservation. */
  backfillDeadlineAt?: number;
  /** Its priority class as a rank; undefined: never preempted (not a training). */
  classRank?: number;
  /** When it last reported a checkpoint (a preempted job resumes from there). */
  lastCheckpointAt?: number;
  /** When it was last preempted; a job that is not known yet counts as just preempted. */
  preemptedAt?: number;
  /** Being stopped already (preempted, handed back, cancelled): its GPUs come back soon. */
  stopping?: boolean;
}

/** A pool-wide reservation as stored (one per GPU queue): which host holds GPUs for its head job. */
export interface PoolReservation {
  queue: string;
  host: string;
  jobId?: string;
  /** When the holder expects enough of its GPUs free (ms; Infinity: unknown). */
  expectedStartAt: number;
}

export interface HostCapacity {
  gpusTotal: number;
  gpusFree: number;
  cpuSlotsTotal: number;
  cpuSlotsFree: number;
}

export interface DispatchSnapshot {
  /** The time of the snapshot (ms); head times and expected ends are on the same clock. */
  now: number;
  /** This host's id: the holder named in pool reservations. */
  host?: string;
  policy: DispatchPolicy;
  /** The queues this host serves, in config order: ties are broken by it. */
  queues: readonly QueueState[];
  capacity: HostCapacity;
  /** The GPU jobs running here (for expected starts and backfill); empty when not needed. */
  running?: readonly RunningGpuJob[];
  /** The queue GPUs are held for on this host since an earlier decision, if any (see reservation). */
  reservedFor?: string;
  /** Standing pool-wide reservations of the GPU queues this host serves, by queue. */
  reservations?: ReadonlyMap<string, PoolReservation>;
  /** How long the oldest blocked GPU job may wait before GPUs are held for it. */
  starvationGuardMs: number;
  /** How long past the reservation's expected start a backfilled job may run before it is handed back. */
  backfillOverrunMs?: number;
  /** How long a job of a higher class waits before it may preempt; undefined: never preempt. */
  preemptAfterMs?: number;
  /** How long a preempted job is safe from another preemption. */
  preemptIntervalMs?: number;
}

/** The part of a snapshot that needs no queue head and no clock. */
export type HostView = Pick<DispatchSnapshot, 'queues' | 'capacity' | 'reservedFor'>;

/** Whether a job of this queue could start now. */
export function fits(capacity: HostCapacity, queue: { gpus: number }): boolean {
  return queue.gpus > 0 ? capacity.gpusFree >= queue.gpus : capacity.cpuSlotsFree > 0;
}

/** Whether this host could ever run a job of this queue (a 4-GPU job never fits a 2-GPU host). */
export function couldEverFit(capacity: HostCapacity, queue: { gpus: number }): boolean {
  return queue.gpus > 0 ? capacity.gpusTotal >= queue.gpus : capacity.cpuSlotsTotal > 0;
}

/** Queues by serving priority, config order within one. */
export function byPriority(queues: readonly QueueState[]): QueueState[] {
  // Array.prototype.sort is stable: within a priority, the config's order.
  return [...queues].sort((a, b) => b.priority - a.priority);
}
