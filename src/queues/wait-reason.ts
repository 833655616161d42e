// Why a waiting job has not started, derived from the live workers' heartbeats (which hosts of
// its pool run, and what they have free) and its queue's pool-wide reservation (which host holds
// GPUs for which job, and when it expects to start it).
import type { LoadedFleet } from '../config/load-fleet.js';
import { gpuFree, type GpuDrain, type WorkerStatus } from './worker-status.js';
import type { QueueSpec } from './placement.js';
import type { StoredReservation } from './reservations.js';

/** What the worker that preempted a training wrote (src/workers/host-worker.ts). */
export interface Preemption {
  at: string;
  host: string;
  forJob: string | null;
  forClass: string;
  victimClass: string;
}

export interface WaitContext {
  jobId: string;
  /** The standing pool-wide reservation of the job's queue, if any. */
  reservation?: StoredReservation;
  /** Set while the job is protected from another preemption after one. */
  preempted?: Preemption;
  now?: number;
}

export function waitReason(spec: QueueSpec, fleet: LoadedFleet, workers: WorkerStatus[], ctx?: WaitContext): string {
  const p = ctx?.preempted;
  const preempted = p ? `preempted on ${p.host} at ${p.at} for job ${p.forJob ?? '(unknown)'} (class ${p.forClass} over ${p.victimClass}); resumes from its newest checkpoint; ` : '';
  return preempted + reservationReason(spec, fleet, workers, ctx);
}

function reservationReason(spec: QueueSpec, fleet: LoadedFleet, workers: WorkerStatus[], ctx?: WaitContext): string {
  const base = baseReason(spec, fleet, workers);
  const r = ctx?.reservation;
  if (!r || spec.gpus === 0) return base;
  const start = r.expectedStartAt === null ? 'at an unknown time (a running job there has no progress, history or timeout)' : atTime(r.expectedStartAt, ctx.now ?? Date.now());
  if (r.jobId === ctx.jobId) return `${base}; ${r.host} holds its GPUs for this job, expected to start ${start}`;
  return `${base}; ${r.host} holds GPUs for job ${r.jobId ?? '(unknown)'} of this queue, ahead of this one, expected to start ${start}`;
}

function atTime(at: number, now: number): string {
  const s = Math.round((at - now) / 1000);
  return `at ${new Date(at).toISOString()} (${s > 0 ? `in ${s} s` : 'now'})`;
}

function baseReason(spec: QueueSpec, fleet: LoadedFleet, workers: WorkerStatus[]): string {
  const hosts = fleet.pools[spec.pool] ?? [];
  const live = workers.filter((w) => hosts.includes(w.host));
  const down = hosts.filter((h) => !live.some((w) => w.host === h));
  if (live.length === 0) return `waiting: no live worker in pool ${spec.pool} (${hosts.join(', ')} not running)`;
  const notes = down.length ? `; no worker running on ${down.join(', ')}` : '';
  if (spec.gpus > 0) {
    // A blocked, unhealthy or drained GPU is not free, though no job holds it.
    const free = live.map((w) => ({ w, free: w.gpus.filter(gpuFree).length }));
    const holding = free.filter(({ w }) => w.reservedFor && w.reservedFor !== spec.name);
    const fits = free.filter(({ w, free: n }) => n >= spec.gpus && !holding.some((h) => h.w === w));
    const plural = spec.gpus === 1 ? 'GPU' : 'GPUs';
    if (fits.length > 0) return `waiting for a worker of pool ${spec.pool} to take it (${fits.map((f) => f.w.host).join(', ')} can start it)`;
    const parts = free.map(({ w, free: n }) => {
      if (w.drained) return drainedHost(w.host, w.drained);
      const blocked = w.gpus.filter((g) => g.blockedBy).map((g) => g.index);
      const unhealthy = w.gpus.flatMap((g) => (g.unhealthy ? [`GPU ${g.index} unhealthy: ${g.unhealthy.reasons.join('; ')}`] : []));
      const why = [...(blocked.length ? [`GPU ${blocked.join(', ')} in use by a process not of this scheduler`] : []), ...unhealthy, ...drainedGpus(w)];
      return `${w.host} has ${n} free${why.length ? ` (${why.join('; ')})` : ''}`;
    });
    const held = holding.map(({ w }) => `${w.host} is holding its GPUs for a waiting ${w.reservedFor} job`);
    return `waiting for ${spec.gpus} free ${plural} in pool ${spec.pool}; ${[...parts, ...held].join(', ')}${notes}`;
  }
  const slots = live.map((w) => ({ w, free: w.drained ? 0 : w.cpuSlots.total - w.cpuSlots.used }));
  if (slots.some((s) => s.free > 0)) return `waiting for a worker of pool ${spec.pool} to take it${notes}`;
  const parts = slots.map(({ w }) => (w.drained ? drainedHost(w.host, w.drained) : `${w.host} has 0 of ${w.cpuSlots.total} free`));
  return `waiting for a free CPU slot in pool ${spec.pool}; ${parts.join(', ')}${notes}`;
}

// An operator's drain, in the words of `POST /api/workers/{host}/drain`'s reason.
const drainedHost = (host: string, drain: GpuDrain) => `${host} drained: ${drain.reason}`;
const drainedGpus = (w: WorkerStatus) => w.gpus.flatMap((g) => (g.drained ? [`${w.host} GPU ${g.index} drained: ${g.drained.reason}`] : []));
