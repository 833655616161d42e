// The figures of a simulated run and the tables they are printed in. Definitions (also in the
// README's Performance section):
// - busy: GPU time leased to jobs (completed runs and handed-back partial ones) / (GPUs × makespan);
//   useful busy counts completed runs only.
// - ideal makespan: a lower bound no policy can beat, max(each pool's GPU time / its GPUs, the
//   latest arrival + run time of any job); ideal busy = GPU time of the jobs / (GPUs × ideal
//   makespan). "÷ ideal" = useful busy / ideal busy, which is ideal makespan / makespan.
// - wait: from arrival to the start of the run that completed.
// - fair share of a job: its wait under perfectly packed first-come-first-served in its pool (a
//   fluid model: the GPU time queued ahead of it at arrival / the pool's GPUs), at least the pool's
//   median run time: even an empty queue leaves a multi-GPU job waiting for a host to have enough
//   GPUs free, i.e. for a typical running job to end.
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import type { SimResult } from './engine.js';
import type { SimJob } from './jobs.js';
import { poolGpus } from './plan.js';
import { Samples } from './samples.js';

export interface SizeWaits {
  gpus: number;
  jobs: number;
  wait: { p50: number; p99: number; worst: number };
  /** wait / fair share, over the jobs of this size. */
  ratio: { p50: number; p99: number; worst: number };
}

export interface PolicyFigures {
  policy: string;
  makespanMs: number;
  idealMakespanMs: number;
  busy: number;
  usefulBusy: number;
  idealBusy: number;
  wastedShare: number;
  decide: { p50: number; p99: number; max: number; count: number };
  passes: number;
  handBacks: number;
  takeovers: number;
  wallMs: number;
  sizes: SizeWaits[];
}

const totalGpus = (fleet: LoadedFleet) => Object.values(fleet.hosts).reduce((n, h) => n + h.gpus.length, 0);
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor((values.length - 1) / 2)] ?? 0;

export function idealMakespan(fleet: LoadedFleet, jobs: readonly SimJob[]): number {
  const work = new Map<string, number>();
  for (const j of jobs) work.set(j.pool, (work.get(j.pool) ?? 0) + j.gpus * j.durationMs);
  const byPool = [...work].map(([pool, w]) => w / poolGpus(fleet, pool));
  return Math.max(0, ...byPool, ...jobs.map((j) => j.arriveAt + j.durationMs));
}

/** Each job's fair share of waiting (see above), by job id. */
export function fairShares(fleet: LoadedFleet, jobs: readonly SimJob[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const pool of new Set(jobs.map((j) => j.pool))) {
    const mine = jobs.filter((j) => j.pool === pool);
    const gpus = poolGpus(fleet, pool);
    const floor = median(mine.map((j) => j.durationMs));
    let backlog = 0;
    let t = 0;
    for (const j of [...mine].sort((a, b) => a.arriveAt - b.arriveAt)) {
      backlog = Math.max(0, backlog - gpus * (j.arriveAt - t));
      t = j.arriveAt;
      out.set(j.id, Math.max(backlog / gpus, floor));
      backlog += j.gpus * j.durationMs;
    }
  }
  return out;
}

export function figures(fleet: LoadedFleet, r: SimResult): PolicyFigures {
  const gpus = totalGpus(fleet);
  const work = r.jobs.reduce((a, j) => a + j.gpus * j.durationMs, 0);
  const ideal = idealMakespan(fleet, r.jobs);
  const fair = fairShares(fleet, r.jobs);
  const sizes = [...new Set(r.jobs.map((j) => j.gpus))].sort((a, b) => a - b).map((size) => {
    const waits = new Samples();
    const ratios = new Samples();
    const mine = r.jobs.filter((j) => j.gpus === size);
    for (const j of mine) {
      const wait = j.startAt! - j.arriveAt;
      waits.add(wait);
      ratios.add(wait / fair.get(j.id)!);
    }
    const p = (s: Samples) => ({ p50: s.percentile(50), p99: s.percentile(99), worst: s.max() });
    return { gpus: size, jobs: mine.length, wait: p(waits), ratio: p(ratios) };
  });
  return {
    policy: r.policy,
    makespanMs: r.makespanMs,
    idealMakespanMs: ideal,
    busy: (r.usedGpuMs + r.wastedGpuMs) / (gpus * r.makespanMs),
    usefulBusy: r.usedGpuMs / (gpus * r.makespanMs),
    idealBusy: work / (gpus * ideal),
    wastedShare: r.wastedGpuMs / Math.max(1, r.usedGpuMs + r.wastedGpuMs),
    decide: { p50: r.decideMs.percentile(50), p99: r.decideMs.percentile(99), max: r.decideMs.max(), count: r.decideMs.count },
    passes: r.passes,
    handBacks: r.handBacks,
    takeovers: r.takeovers,
    wallMs: r.wallMs,
    sizes,
  };
}

/** A duration in the unit that reads best. */
export function fmtMs(ms: number): string {
  if (!Number.isFinite(ms)) return String(ms);
  if (ms < 1_000) return `${Math.round(ms)} ms`;
  if (ms < 120_000) return `${+(ms / 1_000).toFixed(1)} s`;
  if (ms < 120 * 60_000) return `${+(ms / 60_000).toFixed(1)} min`;
  return `${+(ms / 3_600_000).toFixed(2)} h`;
}

const f = (n: number, digits = 3) => (Number.isFinite(n) ? String(+n.toFixed(digits)) : String(n));
const us = (ms: number) => `${f(ms * 1000, 1)} µs`;

export function summaryTable(rows: readonly PolicyFigures[]): string {
  const sizes = [...new Set(rows.flatMap((r) => r.sizes.map((s) => s.gpus)))];
  const lines = [
    `| policy | busy | useful busy | ideal busy | ÷ ideal | makespan | ideal makespan | wasted GPU time | worst wait ÷ fair share (${sizes.join(' / ')}-GPU jobs) | decide p50 / p99 / max | decisions | run time |`,
    '|---|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows) {
    const worst = sizes.map((g) => f(r.sizes.find((s) => s.gpus === g)?.ratio.worst ?? NaN, 1)).join(' / ');
    lines.push(
      `| ${r.policy} | ${f(r.busy)} | ${f(r.usefulBusy)} | ${f(r.idealBusy)} | ${f(r.usefulBusy / r.idealBusy)} | ${fmtMs(r.makespanMs)} | ${fmtMs(r.idealMakespanMs)} | ` +
        `${f(r.wastedShare * 100, 2)}% (${r.handBacks} hand-backs) | ${worst} | ${us(r.decide.p50)} / ${us(r.decide.p99)} / ${us(r.decide.max)} | ${r.decide.count} | ${fmtMs(r.wallMs)} |`,
    );
  }
  return lines.join('\n');
}

export function waitsTable(rows: readonly PolicyFigures[]): string {
  const lines = ['| policy | GPUs | jobs | wait p50 | wait p99 | worst wait | ÷ fair share p50 | p99 | worst |', '|---|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    for (const s of r.sizes) {
      lines.push(
        `| ${r.policy} | ${s.gpus} | ${s.jobs} | ${fmtMs(s.wait.p50)} | ${fmtMs(s.wait.p99)} | ${fmtMs(s.wait.worst)} | ${f(s.ratio.p50, 2)} | ${f(s.ratio.p99, 2)} | ${f(s.ratio.worst, 2)} |`,
      );
    }
  }
  return lines.join('\n');
}

export const DEFINITIONS = [
  'busy = GPU time leased to jobs (completed runs and handed-back partial runs) / (GPUs × makespan); useful busy counts completed runs only.',
  'ideal makespan = max(each pool\'s GPU time / its GPUs, the latest arrival + run time of any job): a lower bound no policy beats. ideal busy = the jobs\' GPU time / (GPUs × ideal makespan). ÷ ideal = useful busy / ideal busy (= ideal makespan / makespan).',
  'wait = arrival to the start of the run that completed. Fair share of a job = its wait under perfectly packed first-come-first-served in its pool (GPU time queued ahead of it at arrival / the pool\'s GPUs, a fluid model), at least the pool\'s median run time (even with nothing queued, a multi-GPU job waits for a host to free enough GPUs, i.e. for a typical running job to end).',
  'wasted GPU time = GPU time of backfilled runs handed back unfinished (they overran the reservation), as a share of all leased GPU time.',
  'decide = wall time of each call of the policy\'s decide (performance.now around it), over every decision of the run (max includes garbage-collection pauses and the first, unoptimised calls); run time = wall time of the whole simulated run.',
];
