// Draws a workload's jobs: which queue, how long each runs (lognormal: heavy-tailed, drawn again
// until below its command's timeout), and when it arrives. Arrivals per pool: most come as a
// Poisson stream, the rest in bursts (a research sweep, a retrain of every model), spread over a
// span chosen so the pool's offered load (GPU time / (its GPUs × span)) is `load`. Seeded: the
// same spec gives the same jobs every time.
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import { queueSpecs } from '../../src/queues/placement.js';
import type { PlannedJob } from './jobs.js';
import { Random } from './random.js';

export interface JobKind {
  /** A GPU queue of the fleet (training-<model>). */
  queue: string;
  /** How often it comes, relative to the others. */
  weight: number;
  medianMs: number;
  /** The lognormal's shape: 1 gives a p99 about 10x the median. */
  sigma: number;
  /** Progress reports per run (0: none). */
  epochs: number;
}

export interface PlanSpec {
  jobs: number;
  seed: number;
  mix: readonly JobKind[];
  /** Offered load of each pool, below 1. */
  load: number;
  /** The share of jobs that arrive in bursts, and how many come at once. */
  burstShare: number;
  burstSize: number;
}

/** GPUs of the hosts of a pool. */
export function poolGpus(fleet: LoadedFleet, pool: string): number {
  return (fleet.pools[pool] ?? []).reduce((n, id) => n + (fleet.hosts[id]?.gpus.length ?? 0), 0);
}

export function planJobs(fleet: LoadedFleet, spec: PlanSpec): PlannedJob[] {
  const rng = new Random(spec.seed);
  const specs = new Map(queueSpecs(fleet).map((q) => [q.name, q]));
  const drawn = Array.from({ length: spec.jobs }, () => {
    const kind = rng.pick(spec.mix);
    const queue = specs.get(kind.queue);
    if (!queue) throw new Error(`the job mix names "${kind.queue}", which is not a queue of the fleet`);
    const limit = queue.command.timeoutSeconds * 1000;
    let ms: number;
    do ms = Math.max(1, Math.round(rng.lognormal(kind.medianMs, kind.sigma)));
    while (ms >= limit);
    return { kind, pool: queue.pool, gpus: queue.gpus, ms };
  });
  const arrivals: { at: number; queue: string; ms: number; epochs: number }[] = [];
  for (const pool of new Set(drawn.map((d) => d.pool))) {
    const jobs = drawn.filter((d) => d.pool === pool);
    const work = jobs.reduce((a, d) => a + d.gpus * d.ms, 0);
    const span = work / (spec.load * poolGpus(fleet, pool));
    const bursty: typeof jobs = [];
    const steady: typeof jobs = [];
    for (const d of jobs) (rng.next() < spec.burstShare ? bursty : steady).push(d);
    let t = 0;
    for (const d of steady) {
      t += rng.exponential(span / Math.max(1, steady.length));
      arrivals.push({ at: t, queue: d.kind.queue, ms: d.ms, epochs: d.kind.epochs });
    }
    for (let i = 0; i < bursty.length; i += spec.burstSize) {
      const at = rng.next() * span;
      for (const d of bursty.slice(i, i + spec.burstSize)) arrivals.push({ at, queue: d.kind.queue, ms: d.ms, epochs: d.kind.epochs });
    }
  }
  arrivals.sort((a, b) => a.at - b.at);
  const t0 = arrivals[0]?.at ?? 0;
  return arrivals.map((a, i) => ({ id: `${a.queue}.${i}`, queue: a.queue, arriveAt: Math.round(a.at - t0), durationMs: a.ms, epochs: a.epochs }));
}
