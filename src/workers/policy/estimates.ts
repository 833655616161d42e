// Expected durations and ends, the inputs of pool-wide reservations and backfill. A running job's
// end comes from its progress rate once it reports progress (the ETA the API shows), before that
// from the learned durations of its queue, else from its command's timeout (it cannot run
// longer), else it is unknown (Infinity): an unknown end never lets a job backfill.
//
// The rate is taken between the first and the latest progress report when there are two: a
// trainer's start-up (interpreter, imports, loading data) happens before its first report and
// would make a rate measured from the start far too slow early on.
import type { HostCapacity, RunningGpuJob } from './snapshot.js';

/** Fewest learned durations before a percentile of them is trusted. */
export const MIN_SAMPLES = 3;
/** The percentile of learned durations a job is expected to finish within. */
export const ESTIMATE_PERCENTILE = 90;

/** A high percentile of the durations (ms); undefined with fewer than MIN_SAMPLES. */
export function estimateFromSamples(samples: readonly number[]): number | undefined {
  if (samples.length < MIN_SAMPLES) return undefined;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((ESTIMATE_PERCENTILE / 100) * sorted.length) - 1)];
}

/** One progress report: when, and the percent done it said. */
export interface ProgressPoint {
  at: number;
  percent: number;
}

export interface RunFacts {
  startedAt: number;
  /** Percent done as last reported (0–100), if any. */
  percent?: number;
  /** The first and the latest progress reports, when there were two with different percents. */
  firstProgress?: ProgressPoint;
  lastProgress?: ProgressPoint;
  estimateMs?: number;
  timeoutMs?: number;
}

/** When a running job is expected to end (ms; Infinity: unknown). */
export function expectedEnd(run: RunFacts, now: number): number {
  const elapsed = Math.max(0, now - run.startedAt);
  let end = Infinity;
  const { firstProgress: first, lastProgress: last } = run;
  if (first && last && last.percent > first.percent && last.at > first.at && last.percent <= 100) {
    end = last.at + ((100 - last.percent) * (last.at - first.at)) / (last.percent - first.percent);
  } else if (run.percent !== undefined && run.percent > 0 && run.percent <= 100) end = run.startedAt + (elapsed * 100) / run.percent;
  else if (run.estimateMs !== undefined) end = run.startedAt + run.estimateMs;
  // Past its estimate it is expected to end any moment now, not in the past.
  if (run.timeoutMs !== undefined) end = Math.min(end, run.startedAt + run.timeoutMs);
  return Math.max(end, now);
}

/**
 * When `need` GPUs are expected free on a host: now if they are, else when enough running jobs
 * have ended, earliest end first; Infinity when the running jobs cannot free enough (GPUs held
 * for other reasons) or an end that is needed is unknown.
 */
export function expectedStart(need: number, capacity: HostCapacity, running: readonly RunningGpuJob[], now: number): number {
  let free = capacity.gpusFree;
  if (free >= need) return now;
  for (const job of [...running].sort((a, b) => endBound(a) - endBound(b))) {
    free += job.gpus;
    if (free >= need) return Math.max(now, endBound(job));
  }
  return Infinity;
}

/**
 * When a running job's GPUs are expected back: its expected end, and for a backfilled job no
 * later than its deadline (it is handed back then if the reserved job needs its GPUs). Without
 * the bound, a backfilled job reporting a slow ETA would push the reservation's expected start
 * out and let ever more jobs backfill ahead of the job it is held for.
 */
export function endBound(job: RunningGpuJob): number {
  return Math.min(job.expectedEndAt, job.backfillDeadlineAt ?? Infinity);
}

/** GPUs expected free at `at`: free now plus those of running jobs expected to have ended by then. */
export function freeAt(at: number, capacity: HostCapacity, running: readonly RunningGpuJob[]): number {
  return running.reduce((free, job) => free + (endBound(job) <= at ? job.gpus : 0), capacity.gpusFree);
}
