// The dispatch simulator (bench/simulate/) on workloads small enough to work out by hand: which
// job starts when, on which host, under each policy, and the figures computed from that. No Redis:
// the simulator runs the policy on a virtual clock.
import { describe, expect, it } from 'vitest';
import type { DispatchPolicy } from '../src/config/dispatch-policy.js';
import type { DispatchDecision, DispatchSnapshot } from '../src/workers/policy/index.js';
import { Simulation, type SimOptions, type SimResult } from '../bench/simulate/engine.js';
import type { PlannedJob } from '../bench/simulate/jobs.js';
import { planJobs } from '../bench/simulate/plan.js';
import { decodeTrace, encodeTrace, replayDecision } from '../bench/simulate/replay.js';
import { fairShares, figures, idealMakespan } from '../bench/simulate/report.js';
import { WaitRoom } from '../bench/simulate/wait-room.js';
import { onePoolFleet } from './helpers/fleet.js';

const gpu = (index: number) => ({ index, name: `Fake GPU ${index}`, memoryMiB: 8192 });
const host = (gpus: number) => ({ gpus: Array.from({ length: gpus }, (_, i) => gpu(i)), cpuSlots: 1 });
const model = (gpusPerRun: number) => ({
  gpusPerRun,
  train: { command: ['node', 'examples/trainer.mjs'], timeoutSeconds: 1000 },
  validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 },
  checkpointDir: `var/test-checkpoints/sim-${gpusPerRun}`,
});
const models = { small: model(1), big: model(2), tiny: model(1) };
const oneHost = onePoolFleet('(one 2-GPU host)', { h1: host(2) }, models);
const twoHosts = onePoolFleet('(two 2-GPU hosts)', { h1: host(2), h2: host(2) }, models);

const S = 1000;
const job = (id: string, queue: 'small' | 'big' | 'tiny', arriveS: number, runS: number): PlannedJob => ({
  id,
  queue: `training-${queue}`,
  arriveAt: arriveS * S,
  durationMs: runS * S,
  epochs: 0,
});

const options = (policy: DispatchPolicy, over: Partial<SimOptions> = {}): SimOptions => ({
  policy,
  starvationGuardMs: 1 * S,
  backfillOverrunMs: 1 * S,
  heartbeatMs: 5 * S,
  handBackMs: 0,
  ...over,
});

/** Start and end (s) of each job, by id. */
const timeline = (r: SimResult) => Object.fromEntries(r.jobs.map((j) => [j.id, [j.startAt! / S, j.endAt! / S]]));

describe('one host, two GPUs, three jobs', () => {
  // A 1-GPU job runs 0-10 s; a 2-GPU job arrives at 1 s, another 1-GPU job at 3 s; guard 1 s.
  const jobs = [job('A', 'small', 0, 10), job('B', 'big', 1, 10), job('C', 'small', 3, 10)];

  it('none: the later 1-GPU job takes the free GPU, the 2-GPU job waits until both are free', () => {
    const r = new Simulation(oneHost, jobs, options('none')).run();
    expect(timeline(r)).toEqual({ A: [0, 10], B: [13, 23], C: [3, 13] });
    expect(r.makespanMs).toBe(23 * S);
  });

  it('host: once the 2-GPU job has waited the guard, the host holds its free GPU for it', () => {
    const r = new Simulation(oneHost, jobs, options('host')).run();
    expect(timeline(r)).toEqual({ A: [0, 10], B: [10, 20], C: [20, 30] });
    expect(r.makespanMs).toBe(30 * S);
    const f = figures(oneHost, r);
    // Waits: A 0, C 17 s (1-GPU); B 9 s (2-GPU).
    expect(f.sizes.map((s) => [s.gpus, s.wait.worst / S])).toEqual([
      [1, 17],
      [2, 9],
    ]);
    // GPU time 10 + 20 + 10 = 40 GPU-s over 2 GPUs x 30 s.
    expect(f.usefulBusy).toBeCloseTo(40 / 60);
    // Ideal: max(40 GPU-s / 2 GPUs, latest arrival + run: C 3 + 10) = 20 s.
    expect(f.idealMakespanMs).toBe(20 * S);
  });
});

describe('backfill on one host', () => {
  // A (1 GPU, expected 5 s from history, really 10 s) runs; B (2 GPUs) is held for from 2 s,
  // expected to start at 5 s; C (1 GPU, expected 1 s) may use the idle GPU until 5 s + 1 s.
  const history = (sim: Simulation) => {
    for (let i = 0; i < 3; i++) {
      sim.history.record('training-small', 5 * S);
      sim.history.record('training-tiny', 1 * S);
    }
    return sim;
  };
  const jobs = (cRunS: number) => [job('A', 'small', 0, 10), job('B', 'big', 1, 10), job('C', 'tiny', 2, cRunS)];

  it('starts a job expected to end before the reserved one, which then starts on time', () => {
    const r = history(new Simulation(oneHost, jobs(1), options('backfill'))).run();
    expect(timeline(r)).toEqual({ A: [0, 10], B: [10, 20], C: [2, 3] });
    const pool = history(new Simulation(oneHost, jobs(1), options('pool'))).run();
    expect(timeline(pool)).toEqual({ A: [0, 10], B: [10, 20], C: [20, 21] });
  });

  it('hands back a backfilled job that overran, once ending it lets the reserved job start; its run counts as wasted', () => {
    // C really runs 40 s. At 6 s it is past its deadline but A still runs: ending C would not let
    // B start, so it goes on; at 10 s A ends and C is handed back, B starts, C starts over at 20 s.
    const r = history(new Simulation(oneHost, jobs(40), options('backfill'))).run();
    expect(timeline(r)).toEqual({ A: [0, 10], B: [10, 20], C: [20, 60] });
    expect(r.handBacks).toBe(1);
    expect(r.jobs.find((j) => j.id === 'C')!.handBacks).toBe(1);
    expect(r.wastedGpuMs).toBe(8 * S); // 1 GPU, 2 s to 10 s
    expect(r.usedGpuMs).toBe((10 + 20 + 40) * S);
  });
});

describe('two hosts: per-host against pool-wide reservations', () => {
  // Four 1-GPU jobs fill both hosts (two end at 10 s, two at 30 s); a 2-GPU job arrives at 1 s,
  // another 1-GPU job at 3 s. With per-host reservations both hosts idle a GPU for the 2-GPU job
  // from 10 s on; pool-wide, only the host that expects its GPUs first does.
  const jobs = [
    job('S1', 'small', 0, 10),
    job('S2', 'small', 0.1, 30),
    job('S3', 'small', 0.2, 10),
    job('S4', 'small', 0.3, 30),
    job('B', 'big', 1, 5),
    job('S5', 'small', 3, 5),
  ];

  it('host: the 1-GPU job waits for the 2-GPU job although a GPU is idle on each host', () => {
    const r = new Simulation(twoHosts, jobs, options('host')).run();
    // The first marker goes to the host that blocked first; h1 takes S1 and S2, h2 S3 and S4.
    expect(timeline(r)).toMatchObject({ S1: [0, 10], S2: [0.1, 30.1], S3: [0.2, 10.2], S4: [0.3, 30.3], B: [30.1, 35.1], S5: [30.3, 35.3] });
  });

  it('pool: one host holds, the other serves the 1-GPU job; a host that expects GPUs sooner takes the reservation over', () => {
    const r = new Simulation(twoHosts, jobs, options('pool')).run();
    expect(timeline(r)).toMatchObject({ B: [30.1, 35.1], S5: [10.2, 15.2] });
    // h1 holds from 10 s (S2's end unknown: its timeout, 1000.1 s). At 15.2 s three runs are
    // learned, h2 expects S4 to end now and takes the reservation over.
    expect(r.takeovers).toBe(1);
  });

  it('none: the first host with a free GPU takes the 1-GPU job', () => {
    const r = new Simulation(twoHosts, jobs, options('none')).run();
    expect(timeline(r)).toMatchObject({ B: [30.1, 35.1], S5: [10, 15] });
  });
});

describe('markers', () => {
  it('wakes the host blocked longest on a queue, one per mark, and keeps a mark nobody waits for', () => {
    const woken: [number, string | undefined][] = [];
    const room = new WaitRoom((h, q) => woken.push([h, q]));
    expect(room.block(1, ['a', 'b'])).toBeDefined();
    expect(room.block(2, ['a'])).toBeDefined();
    room.mark('a');
    room.mark('a');
    expect(woken).toEqual([
      [1, 'a'],
      [2, 'a'],
    ]);
    room.mark('b'); // nobody waits on b any more: the marker stays
    expect(room.block(3, ['c', 'b'])).toBeUndefined();
    expect(woken.at(-1)).toEqual([3, 'b']);
    room.wake(4); // not blocked: its wake key waits for its next block
    expect(room.block(4, ['c'])).toBeUndefined();
    expect(woken.at(-1)).toEqual([4, undefined]);
  });

  it('ends a block at its timeout only if it is still the same block', () => {
    const woken: number[] = [];
    const room = new WaitRoom((h) => woken.push(h));
    const first = room.block(1, ['a'])!;
    room.mark('a');
    const second = room.block(1, ['a'])!;
    room.timeout(1, first);
    expect(woken).toEqual([1]);
    room.timeout(1, second);
    expect(woken).toEqual([1, 1]);
  });
});

describe('figures', () => {
  it('fair share: the GPU time queued ahead at arrival over the pool GPUs, at least the median run', () => {
    const sim = new Simulation(oneHost, [job('A', 'big', 0, 10), job('B', 'big', 0, 10), job('C', 'small', 5, 2), job('D', 'small', 30, 2)], options('none'));
    const fair = fairShares(oneHost, sim.jobs);
    // Median run 2 s (the lower middle of 2, 2, 10, 10). B: A's 20 GPU-s / 2 GPUs = 10 s.
    // C at 5 s: 40 - 2 x 5 = 30 GPU-s ahead, 15 s. D at 30 s: nothing ahead, the floor.
    expect(Object.fromEntries(fair)).toEqual({ A: 2 * S, B: 10 * S, C: 15 * S, D: 2 * S });
    expect(idealMakespan(oneHost, sim.jobs)).toBe(32 * S);
  });

  it('draws the same jobs for the same seed, and other jobs for another', () => {
    const mix = [
      { queue: 'training-small', weight: 2, medianMs: 60 * S, sigma: 1, epochs: 5 },
      { queue: 'training-big', weight: 1, medianMs: 120 * S, sigma: 1, epochs: 5 },
    ];
    const spec = { jobs: 200, seed: 7, mix, load: 0.9, burstShare: 0.2, burstSize: 10 };
    const a = planJobs(twoHosts, spec);
    expect(planJobs(twoHosts, spec)).toEqual(a);
    expect(planJobs(twoHosts, { ...spec, seed: 8 })).not.toEqual(a);
    expect(a.every((j) => j.durationMs < 1000 * S)).toBe(true);
    // Same run, same outcome.
    const run = () => timeline(new Simulation(twoHosts, a, options('backfill')).run());
    expect(run()).toEqual(run());
  });
});

describe('replaying decisions', () => {
  it('gives back every decision of a simulated run, with the same snapshot, from its JSON', () => {
    const mix = [
      { queue: 'training-small', weight: 3, medianMs: 30 * S, sigma: 1, epochs: 4 },
      { queue: 'training-big', weight: 1, medianMs: 60 * S, sigma: 1, epochs: 4 },
    ];
    const planned = planJobs(twoHosts, { jobs: 60, seed: 3, mix, load: 0.95, burstShare: 0.3, burstSize: 6 });
    const trace: { snapshot: string; decision: string }[] = [];
    new Simulation(twoHosts, planned, options('backfill', { onDecision: (_h, snapshot, decision) => trace.push({ snapshot: encodeTrace(snapshot), decision: encodeTrace(decision) }) })).run();
    const decisions = trace.map((t) => decodeTrace<DispatchDecision>(t.decision));
    // Not vacuous: holds, backfills and starts are in it.
    expect(decisions.some((d) => d.hold)).toBe(true);
    expect(decisions.some((d) => d.backfill.size > 0)).toBe(true);
    for (const t of trace) {
      const replayed = replayDecision(twoHosts, decodeTrace<DispatchSnapshot>(t.snapshot));
      expect(decodeTrace(encodeTrace(replayed.snapshot))).toStrictEqual(decodeTrace(t.snapshot));
      expect(decodeTrace(encodeTrace(replayed.decision))).toStrictEqual(decodeTrace(t.decision));
    }
  });
});
