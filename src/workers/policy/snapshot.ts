// What the dispatch policy decides from: one host's capacity and the queues it serves, as read at
// one moment. The host worker fills it from Redis; a simulator fills it from its own model with a
// virtual clock. Plain data only, so a decision can be replayed, logged or pinned in a test.

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
}

export interface HostCapacity {
  gpusTotal: number;
  gpusFree: number;
  cpuSlotsTotal: number;
  cpuSlotsFree: number;
}

export interface DispatchSnapshot {
  /** The time of the snapshot (ms); head times are on the same clock. */
  now: number;
  /** The queues this host serves, in config order: ties are broken by it. */
  queues: readonly QueueState[];
  capacity: HostCapacity;
  /** The queue GPUs are held for since an earlier decision, if any (see reservation). */
  reservedFor?: string;
  /** How long the oldest blocked GPU job may wait before the host holds GPUs for it. */
  starvationGuardMs: number;
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
