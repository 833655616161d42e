// One simulated host: what its HostWorker keeps in memory. Its capacity is the worker's own
// Capacity class, its queues are those queuesForHost gives it (config order, kind priority), and
// its running jobs report progress as a trainer does: after each of their epochs.
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import { SERVING_PRIORITY } from '../../src/queues/kinds.js';
import { queuesForHost, type QueueSpec } from '../../src/queues/placement.js';
import { Capacity, type Lease } from '../../src/workers/capacity.js';
import type { Hold, QueueState, RunningFacts } from '../../src/workers/policy/index.js';
import type { SimJob } from './jobs.js';

export interface SimRun {
  job: SimJob;
  lease: Lease;
  startedAt: number;
  timeoutMs: number;
  backfillDeadlineAt?: number;
  /** As a replayed trace recorded them (the workloads model no checkpoints or preemptions). */
  lastCheckpointAt?: number;
  preemptedAt?: number;
  /** Handed back (overran its backfill deadline); its GPUs free once the hand-back completes. */
  stopped: boolean;
  ended: boolean;
}

export class SimHost {
  readonly capacity: Capacity;
  /** The served queues as the policy sees them, in config order; their specs by name. */
  readonly queues: QueueState[];
  readonly specs: Map<string, QueueSpec>;
  readonly running = new Map<string, SimRun>();
  reservedFor: string | undefined;
  hold: Hold | undefined;
  /** What the last decision would start from, and when to decide again: what the next block waits on. */
  waitOn: { queues: string[]; until?: number } = { queues: [] };
  /** When its next heartbeat is scheduled (only while it holds a pool reservation). */
  beatAt: number | undefined;

  constructor(
    readonly id: string,
    readonly index: number,
    fleet: LoadedFleet,
    /** Where in the heartbeat period this host beats (workers start at different moments). */
    readonly beatPhaseMs: number,
  ) {
    const host = fleet.hosts[id]!;
    this.capacity = new Capacity(host.gpus, host.cpuSlots);
    const served = queuesForHost(fleet, id);
    this.queues = served.map((q) => ({ name: q.name, priority: SERVING_PRIORITY[q.kind], gpus: q.gpus }));
    this.specs = new Map(served.map((q) => [q.name, q]));
  }

  /** The GPU jobs running here, as the dispatch snapshot needs them (HostWorker.runningFacts). */
  facts(now: number): RunningFacts[] {
    const out: RunningFacts[] = [];
    for (const run of this.running.values()) {
      if (run.job.gpus === 0) continue;
      const percent = progress(run, now);
      out.push({
        id: run.job.id,
        queue: run.job.queue,
        gpus: run.lease.gpus.length,
        startedAt: run.startedAt,
        timeoutMs: run.timeoutMs,
        ...(percent !== undefined ? { percent } : {}),
        ...(run.backfillDeadlineAt !== undefined ? { backfillDeadlineAt: run.backfillDeadlineAt } : {}),
        ...(run.job.classRank !== undefined ? { classRank: run.job.classRank } : {}),
        ...(run.lastCheckpointAt !== undefined ? { lastCheckpointAt: run.lastCheckpointAt } : {}),
        ...(run.preemptedAt !== undefined ? { preemptedAt: run.preemptedAt } : {}),
        ...(run.stopped ? { stopping: true } : {}),
      });
    }
    return out;
  }
}

/** The percent a trainer last reported: whole epochs done so far; undefined before the first. */
function progress(run: SimRun, now: number): number | undefined {
  const { epochs, durationMs } = run.job;
  if (!epochs) return undefined;
  const done = Math.min(epochs, Math.floor((epochs * (now - run.startedAt)) / durationMs));
  return done > 0 ? (done / epochs) * 100 : undefined;
}
