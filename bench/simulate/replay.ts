// Replaying a host worker's recorded decisions in the simulator: a snapshot the worker decided on
// (recorded through its onDecision observer, kept as JSON) becomes the state of one simulated host
// (its waiting heads, running jobs, stored reservations, learned durations, standing hold), and
// the simulator's own decision step (Simulation.decisionFor) turns that state into a snapshot and
// a decision, to be compared with the recorded ones.
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import { DEFAULT_BACKFILL_OVERRUN_MS, type DispatchDecision, type DispatchSnapshot } from '../../src/workers/policy/index.js';
import { Simulation } from './engine.js';
import type { SimJob } from './jobs.js';

/**
 * JSON that keeps what snapshots and decisions hold beyond plain JSON: Maps, infinite numbers, and
 * properties set to undefined (a queue whose head was read and found empty has `headAt: undefined`;
 * one not read has no `headAt`).
 */
export function encodeTrace(value: unknown): string {
  return JSON.stringify(value, function (this: unknown, key: string, v: unknown) {
    if (v === undefined && key !== '' && !Array.isArray(this)) return { $undefined: true };
    if (v instanceof Map) return { $map: [...v] };
    if (typeof v === 'number' && !Number.isFinite(v)) return { $number: String(v) };
    return v;
  });
}

const UNDEFINED = Symbol('undefined');

export function decodeTrace<T>(text: string): T {
  const parsed: unknown = JSON.parse(text, (_key, v: unknown) => {
    if (v && typeof v === 'object' && '$undefined' in v) return UNDEFINED;
    if (v && typeof v === 'object' && '$map' in v) return new Map((v as { $map: [unknown, unknown][] }).$map);
    if (v && typeof v === 'object' && '$number' in v) return Number((v as { $number: string }).$number);
    return v;
  });
  return restoreUndefined(parsed) as T;
}

function restoreUndefined(v: unknown): unknown {
  if (v === UNDEFINED) return undefined;
  if (v instanceof Map) for (const [k, x] of v) v.set(k, restoreUndefined(x));
  else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) (v as Record<string, unknown>)[k] = restoreUndefined(x);
  return v;
}

/** The simulator's snapshot and decision for the host state a recorded snapshot describes. */
export function replayDecision(fleet: LoadedFleet, recorded: DispatchSnapshot): { snapshot: DispatchSnapshot; decision: DispatchDecision } {
  if (!recorded.host) throw new Error('a recorded snapshot must name its host');
  const sim = new Simulation(fleet, [], {
    policy: recorded.policy,
    starvationGuardMs: recorded.starvationGuardMs,
    backfillOverrunMs: recorded.backfillOverrunMs ?? DEFAULT_BACKFILL_OVERRUN_MS,
    ...(recorded.preemptAfterMs !== undefined ? { preemptAfterMs: recorded.preemptAfterMs } : {}),
    ...(recorded.preemptIntervalMs !== undefined ? { preemptIntervalMs: recorded.preemptIntervalMs } : {}),
    heartbeatMs: 5_000,
    handBackMs: 0,
  });
  sim.now = recorded.now;
  const host = sim.host(recorded.host);
  host.reservedFor = recorded.reservedFor;
  for (const q of recorded.queues) {
    const waiting = sim.queues.get(q.name)!.waiting;
    if (q.headAt !== undefined) waiting.push({ ...job(q.headId ?? `${q.name}.head`, q.name, q.gpus, q.headAt), ...(q.headClass !== undefined ? { classRank: q.headClass } : {}) });
    // A queue the worker did not read may have had anything waiting: a decoy, which a snapshot
    // that reads what the worker's does never shows.
    else if (!('headAt' in q)) waiting.push(job(`${q.name}.unread`, q.name, q.gpus, 0));
    // Three equal runs: the learned estimate is that run time.
    if (q.estimateMs !== undefined) for (let i = 0; i < 3; i++) sim.history.record(q.name, q.estimateMs);
  }
  for (const r of recorded.reservations?.values() ?? []) sim.store.claim(r, recorded.now, Infinity);
  // The worker frees a job's GPUs as soon as its processes are gone and forgets the job once it is
  // settled in Redis, so a snapshot between the two lists a job whose GPUs are free again (they
  // may already be leased to the next job). Which of the listed jobs still hold their GPUs does
  // not show in a snapshot, nor change it: any set of them that leaves the recorded GPUs free.
  const running = recorded.running ?? [];
  const holding = holdingSet(
    running.map((r) => r.gpus),
    recorded.capacity.gpusTotal - recorded.capacity.gpusFree,
  );
  if (!holding) throw new Error(`no set of the recorded running jobs of ${recorded.host} takes the GPUs it had taken; the replay does not model GPUs held for other reasons`);
  running.forEach((r, i) => {
    const released = { jobId: r.id, gpus: Array.from({ length: r.gpus }, (_, g) => ({ index: -1 - g, name: 'released', memoryMiB: 0 })), cpu: false };
    const lease = holding.has(i) ? host.capacity.lease(r.id, { gpus: r.gpus })! : released;
    const run = runReporting(r.expectedEndAt, recorded.now, { ...job(r.id, r.queue, r.gpus, 0), ...(r.classRank !== undefined ? { classRank: r.classRank } : {}) });
    host.running.set(r.id, {
      ...run,
      lease,
      ...(r.backfillDeadlineAt !== undefined ? { backfillDeadlineAt: r.backfillDeadlineAt } : {}),
      ...(r.lastCheckpointAt !== undefined ? { lastCheckpointAt: r.lastCheckpointAt } : {}),
      ...(r.preemptedAt !== undefined ? { preemptedAt: r.preemptedAt } : {}),
      stopped: r.stopping === true,
      ended: false,
    });
  });
  // CPU jobs (deploy tests, backtests) are not in a snapshot, only the slots they take.
  for (let i = host.capacity.state().cpuSlotsFree; i > recorded.capacity.cpuSlotsFree; i--) host.capacity.lease(`cpu-job-${i}`, { gpus: 0 });
  const capacity = host.capacity.state();
  if (capacity.gpusFree !== recorded.capacity.gpusFree || capacity.cpuSlotsFree !== recorded.capacity.cpuSlotsFree) {
    throw new Error(`${recorded.host} had CPU slots or GPUs taken by something other than its recorded jobs; the replay does not model that`);
  }
  return sim.decisionFor(host);
}

/** Indexes of jobs whose GPUs add up to `taken` (the newest first), if any. */
function holdingSet(gpus: readonly number[], taken: number): Set<number> | undefined {
  const pick = (i: number, left: number): number[] | undefined => {
    if (left === 0) return [];
    if (i < 0 || left < 0) return undefined;
    const withIt = pick(i - 1, left - gpus[i]!);
    return withIt ? [...withIt, i] : pick(i - 1, left);
  };
  const found = pick(gpus.length - 1, taken);
  return found && new Set(found);
}

function job(id: string, queue: string, gpus: number, arriveAt: number): SimJob {
  return { id, queue, gpus, pool: '', arriveAt, durationMs: 1, epochs: 0, handBacks: 0 };
}

/**
 * A running job whose facts give the recorded expected end: a trainer halfway through two epochs
 * whose run so far is as long as what is left (the end by its progress rate is exactly `end`); at
 * an end that is now (a job past its estimate), one whose timeout is now.
 */
function runReporting(end: number, now: number, job: SimJob) {
  if (!Number.isFinite(end)) throw new Error(`job ${job.id}: a running job always has a known end (its command's timeout)`);
  const elapsed = end - now;
  if (elapsed <= 0) return { job, startedAt: now, timeoutMs: 0 };
  return { job: { ...job, epochs: 2, durationMs: 1.5 * elapsed }, startedAt: now - elapsed, timeoutMs: Infinity };
}
