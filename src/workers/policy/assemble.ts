// A snapshot from what was read: the host's view, the heads of the queues headsToRead named, the
// stored reservations of those queues, the learned durations and the running jobs' facts. The host
// worker reads these from Redis (dispatch-snapshot.ts), the simulator from its model
// (bench/simulate/); both assemble the snapshot here, so what the policy is shown is built once.
import { expectedEnd, type ProgressPoint } from './estimates.js';
import type { DispatchPolicy, DispatchSnapshot, HostView, PoolReservation, QueueState, RunningGpuJob } from './snapshot.js';

/** The job a queue would give next: its id, when it was enqueued (ms), its params digest. */
export interface Head {
  id: string;
  at: number;
  params?: string;
  /** Its priority class as a rank (the reader resolves payload over model); undefined: none. */
  classRank?: number;
}

/** A GPU job running on the host, as the worker knows it. */
export interface RunningFacts {
  id: string;
  queue: string;
  gpus: number;
  params?: string;
  startedAt: number;
  percent?: number;
  firstProgress?: ProgressPoint;
  lastProgress?: ProgressPoint;
  timeoutMs?: number;
  backfillDeadlineAt?: number;
  classRank?: number;
  lastCheckpointAt?: number;
  preemptedAt?: number;
  stopping?: boolean;
}

export interface SnapshotReads {
  now: number;
  host: string;
  policy: DispatchPolicy;
  starvationGuardMs: number;
  backfillOverrunMs: number;
  preemptAfterMs?: number;
  preemptIntervalMs?: number;
  /** Each queue that was read, with its head (undefined: nothing waiting); queues not read are absent. */
  heads: ReadonlyMap<string, Head | undefined>;
  /** The stored reservations of the queues read. */
  reservations: ReadonlyMap<string, PoolReservation>;
  /** The learned duration of a queue's jobs (of these params when known), see estimateFromSamples. */
  estimate: (queue: string, params?: string) => number | undefined;
}

/** Whether one host of a pool holds GPUs for the whole pool (stored reservations, estimates). */
export function pooled(policy: DispatchPolicy): boolean {
  return policy === 'pool' || policy === 'backfill';
}

export function assembleSnapshot(view: HostView, running: readonly RunningFacts[], reads: SnapshotReads): DispatchSnapshot {
  const { now, heads } = reads;
  const needsEstimates = pooled(reads.policy);
  // Plain assignments rather than spreads: the simulator assembles hundreds of thousands of these.
  const queues: QueueState[] = view.queues.map((q) => {
    const out: QueueState = { ...q };
    const head = heads.get(q.name);
    if (heads.has(q.name)) {
      out.headAt = head?.at;
      if (head) out.headId = head.id;
      if (head?.classRank !== undefined) out.headClass = head.classRank;
    }
    if (needsEstimates && q.gpus > 0) {
      const estimateMs = reads.estimate(q.name, head?.params);
      if (estimateMs !== undefined) out.estimateMs = estimateMs;
    }
    return out;
  });
  const runningJobs: RunningGpuJob[] = running.map((r) => {
    const job: RunningGpuJob = {
      id: r.id,
      queue: r.queue,
      gpus: r.gpus,
      // A job being stopped gives its GPUs back within its grace: as good as now.
      expectedEndAt: r.stopping
        ? now
        : expectedEnd(
            { startedAt: r.startedAt, percent: r.percent, firstProgress: r.firstProgress, lastProgress: r.lastProgress, estimateMs: reads.estimate(r.queue, r.params), timeoutMs: r.timeoutMs },
            now,
          ),
    };
    if (r.backfillDeadlineAt !== undefined) job.backfillDeadlineAt = r.backfillDeadlineAt;
    if (r.classRank !== undefined) job.classRank = r.classRank;
    if (r.lastCheckpointAt !== undefined) job.lastCheckpointAt = r.lastCheckpointAt;
    if (r.preemptedAt !== undefined) job.preemptedAt = r.preemptedAt;
    if (r.stopping) job.stopping = true;
    return job;
  });
  return {
    ...view,
    queues,
    now,
    host: reads.host,
    policy: reads.policy,
    running: runningJobs,
    reservations: reads.reservations,
    starvationGuardMs: reads.starvationGuardMs,
    backfillOverrunMs: reads.backfillOverrunMs,
    ...(reads.preemptAfterMs !== undefined ? { preemptAfterMs: reads.preemptAfterMs } : {}),
    ...(reads.preemptIntervalMs !== undefined ? { preemptIntervalMs: reads.preemptIntervalMs } : {}),
  };
}
