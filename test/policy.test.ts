// The dispatch policy as pure functions: each decision pinned from a hand-made snapshot, with no
// Redis and no clock.
import { describe, expect, it } from 'vitest';
import {
  afterStart,
  assembleSnapshot,
  claimDue,
  claimWins,
  decide,
  estimateFromSamples,
  expectedEnd,
  expectedStart,
  hold,
  fillOrder,
  headsToRead,
  reservation,
  serveableQueues,
  TAKEOVER_MARGIN_MS,
  type DispatchSnapshot,
  type PoolReservation,
  type QueueState,
  type RunningGpuJob,
} from '../src/workers/policy/index.js';

const training = (name: string, gpus: number, headAt?: number): QueueState => ({ name, priority: 5, gpus, headAt });
const deployTest = (name: string): QueueState => ({ name, priority: 5, gpus: 0 });
const backtest: QueueState = { name: 'backtest', priority: 3, gpus: 0 };
const dataSync: QueueState = { name: 'data-sync', priority: 10, gpus: 0 };

/** A 2-GPU host with one CPU slot, at t = 10 s, guard 5 s, unless told otherwise. */
function snapshot(queues: QueueState[], over: Partial<Omit<DispatchSnapshot, 'queues'>> & { gpusFree?: number } = {}): DispatchSnapshot {
  const { gpusFree = 2, ...rest } = over;
  return {
    now: 10_000,
    queues,
    capacity: { gpusTotal: 2, gpusFree, cpuSlotsTotal: 1, cpuSlotsFree: 1 },
    starvationGuardMs: 5_000,
    policy: 'host',
    ...rest,
  };
}

const names = (qs: QueueState[]) => qs.map((q) => q.name);

describe('serving order', () => {
  it('serves by kind priority: data sync, then training, then backtests, whatever the config order', () => {
    const s = snapshot([backtest, training('training-a', 1, 9_000), dataSync]);
    expect(names(fillOrder(s))).toEqual(['data-sync', 'training-a', 'backtest']);
  });

  it('serves the oldest waiting job first among GPU queues of one priority', () => {
    // "big" is listed first, but the small job has waited longer.
    const s = snapshot([training('training-big', 2, 9_500), training('training-small', 1, 9_000)]);
    expect(names(fillOrder(s))).toEqual(['training-small', 'training-big']);
    const younger = snapshot([training('training-big', 2, 9_000), training('training-small', 1, 9_500)]);
    expect(names(fillOrder(younger))).toEqual(['training-big', 'training-small']);
  });

  it('breaks ties by config order, and puts empty queues and CPU queues of the same priority after waiting GPU queues', () => {
    const s = snapshot([
      deployTest('deploy-test-a'),
      training('training-a', 1),
      training('training-b', 1, 9_000),
      training('training-c', 1, 9_000),
      deployTest('deploy-test-b'),
    ]);
    expect(names(fillOrder(s))).toEqual(['training-b', 'training-c', 'deploy-test-a', 'training-a', 'deploy-test-b']);
  });

  it('still lists empty queues (a job may have come since the snapshot) but never one that cannot start now', () => {
    const s = snapshot([training('training-big', 2), training('training-small', 1), dataSync, backtest], { gpusFree: 1 });
    expect(names(fillOrder(s))).toEqual(['data-sync', 'training-small', 'backtest']);
    const cpuBusy = { ...s, capacity: { ...s.capacity, cpuSlotsFree: 0 } };
    expect(names(fillOrder(cpuBusy))).toEqual(['training-small']);
  });

  it('does not change the snapshot it is given, and gives the same answer every time', () => {
    const queues = [training('training-big', 2, 1_000), training('training-small', 1, 2_000), dataSync].map((q) => Object.freeze(q));
    const s = Object.freeze(snapshot(Object.freeze(queues) as QueueState[], { gpusFree: 1, starvationGuardMs: 0 }));
    const first = decide(s);
    expect(decide(s)).toEqual(first);
    expect(first.reservedFor).toBe('training-big');
  });
});

describe('the starvation rule', () => {
  // The 2-GPU job waits since t = 1 s; a 1-GPU job holds one of the two GPUs.
  const blocked = [training('training-big', 2, 1_000), training('training-small', 1, 2_000), dataSync, backtest];

  it('holds GPUs only once the blocked job has waited the guard', () => {
    expect(reservation(snapshot(blocked, { gpusFree: 1, now: 1_000 + 4_999 }))).toBeUndefined();
    expect(reservation(snapshot(blocked, { gpusFree: 1, now: 1_000 + 5_000 }))).toBe('training-big');
  });

  it('holds them for the oldest blocked queue, not one whose job could start now or could never start here', () => {
    const queues = [
      training('training-huge', 4, 100), // oldest, but needs 4 GPUs on a 2-GPU host
      training('training-big', 2, 1_000),
      training('training-big2', 2, 900),
      training('training-small', 1, 50), // older still, but it fits now: not blocked
    ];
    expect(reservation(snapshot(queues, { gpusFree: 1 }))).toBe('training-big2');
  });

  it('breaks a tie between blocked queues by config order', () => {
    const queues = [training('training-x', 2, 1_000), training('training-y', 2, 1_000), training('training-z', 1)];
    expect(reservation(snapshot(queues, { gpusFree: 1 }))).toBe('training-x');
    expect(reservation(snapshot([queues[1]!, queues[0]!, queues[2]!], { gpusFree: 1 }))).toBe('training-y');
  });

  it('makes no reservation for an empty queue, nor while no GPU is free', () => {
    const empty = [training('training-big', 2), training('training-small', 1, 2_000)];
    expect(reservation(snapshot(empty, { gpusFree: 1 }))).toBeUndefined();
    expect(reservation(snapshot(blocked, { gpusFree: 0 }))).toBeUndefined();
  });

  it('keeps a reservation while its queue has work, even once its job fits or before the guard', () => {
    const s = snapshot(blocked, { gpusFree: 2, now: 1_001, reservedFor: 'training-big' });
    expect(reservation(s)).toBe('training-big');
    expect(reservation({ ...s, capacity: { ...s.capacity, gpusFree: 0 } })).toBe('training-big');
    // Both GPUs are free and the small job fits too, but the big one goes first.
    expect(names(decide(s).order)).toEqual(['data-sync', 'training-big', 'backtest']);
  });

  it('drops the reservation when its queue has nothing waiting', () => {
    const s = snapshot([training('training-big', 2), training('training-small', 1, 2_000)], { gpusFree: 1, reservedFor: 'training-big' });
    expect(decide(s)).toMatchObject({ reservedFor: undefined, order: [expect.objectContaining({ name: 'training-small' })] });
  });

  it('leaves held-back queues out of the order and out of the markers to wait on; CPU queues go on', () => {
    const s = snapshot(blocked, { gpusFree: 1, starvationGuardMs: 0 });
    const d = decide(s);
    expect(d.reservedFor).toBe('training-big');
    expect(names(d.order)).toEqual(['data-sync', 'backtest']);
    expect(names(serveableQueues({ ...s, reservedFor: d.reservedFor }))).toEqual(['data-sync', 'backtest']);
    // Without the reservation the small job would be served.
    expect(names(serveableQueues(s))).toEqual(['data-sync', 'training-small', 'backtest']);
  });

  it('ends the reservation when a job of its queue starts, not when another starts', () => {
    expect(afterStart('training-big', 'training-big')).toBeUndefined();
    expect(afterStart('training-big', 'data-sync')).toBe('training-big');
    expect(afterStart(undefined, 'training-small')).toBeUndefined();
  });

  it('pins the race of workers.test.ts: a snapshot read before the big job arrived lets a later small job through', () => {
    // One 1-GPU job runs; the 2-GPU job is enqueued at t = 10.000 s, a 1-GPU job at 10.011 s, guard 0.
    const before = snapshot([training('training-big', 2), training('training-small', 1)], { gpusFree: 1, now: 9_990, starvationGuardMs: 0 });
    const after = snapshot([training('training-big', 2, 10_000), training('training-small', 1, 10_011)], {
      gpusFree: 1,
      now: 10_021,
      starvationGuardMs: 0,
    });
    // Decided on the stale snapshot, the small queue is open: its next job (the 10.011 s one) would start.
    expect(decide(before)).toMatchObject({ reservedFor: undefined, order: [expect.objectContaining({ name: 'training-small' })] });
    // Decided on heads read just before the dequeue, the big job is held for and the small queue is shut.
    expect(decide(after)).toMatchObject({ reservedFor: 'training-big', order: [] });
  });
});

describe('heads to read', () => {
  const queues = [training('training-huge', 4), training('training-big', 2), training('training-small', 1), dataSync, backtest];

  it('reads every GPU queue this host could ever run while a GPU is free, and no CPU queue', () => {
    expect(headsToRead(snapshot(queues, { gpusFree: 1 }))).toEqual(['training-big', 'training-small']);
  });

  it('reads nothing while no GPU is free, except the reserved queue to see whether it stands', () => {
    expect(headsToRead(snapshot(queues, { gpusFree: 0 }))).toEqual([]);
    expect(headsToRead(snapshot(queues, { gpusFree: 0, reservedFor: 'training-big' }))).toEqual(['training-big']);
  });
});

describe('pool-wide reservations', () => {
  // A 4-GPU host at t = 100 s; the 4-GPU job waits since t = 10 s, past the 5 s guard.
  const big = (headAt = 10_000): QueueState => ({ ...training('training-big', 4, headAt), headId: 'big-1' });
  const small = (estimateMs?: number): QueueState => ({ ...training('training-small', 1, 50_000), ...(estimateMs ? { estimateMs } : {}) });
  const run = (id: string, gpus: number, expectedEndAt: number, backfillDeadlineAt?: number): RunningGpuJob => ({
    id,
    queue: 'training-small',
    gpus,
    expectedEndAt,
    ...(backfillDeadlineAt ? { backfillDeadlineAt } : {}),
  });
  function pooled(over: Partial<DispatchSnapshot> & { gpusFree?: number } = {}): DispatchSnapshot {
    const { gpusFree = 2, ...rest } = over;
    return {
      now: 100_000,
      host: 'gpu-a',
      policy: 'pool',
      queues: [big(), small()],
      capacity: { gpusTotal: 4, gpusFree, cpuSlotsTotal: 1, cpuSlotsFree: 1 },
      running: [run('r1', 1, 130_000), run('r2', 1, 160_000)],
      reservations: new Map(),
      starvationGuardMs: 5_000,
      ...rest,
    };
  }
  const heldBy = (host: string, expectedStartAt: number): PoolReservation => ({ queue: 'training-big', host, jobId: 'big-1', expectedStartAt });

  it('bids for the starved job with the time its running jobs are expected to free enough GPUs', () => {
    expect(hold(pooled())).toEqual({ queue: 'training-big', expectedStartAt: 160_000, jobId: 'big-1' });
    // One of the two running jobs has no known end: nor has the bid.
    expect(hold(pooled({ running: [run('r1', 1, 130_000), run('r2', 1, Infinity)] }))?.expectedStartAt).toBe(Infinity);
  });

  it('leaves the reservation to a host that expects to start the job sooner, and takes it from one that is later by more than the margin', () => {
    expect(hold(pooled({ reservations: new Map([['training-big', heldBy('gpu-b', 140_000)]]) }))).toBeUndefined();
    expect(hold(pooled({ reservations: new Map([['training-big', heldBy('gpu-b', 160_000 + TAKEOVER_MARGIN_MS)]]) }))).toBeUndefined();
    expect(hold(pooled({ reservations: new Map([['training-big', heldBy('gpu-b', 160_001 + TAKEOVER_MARGIN_MS)]]) }))?.queue).toBe('training-big');
    // A known start beats an unknown one.
    expect(hold(pooled({ reservations: new Map([['training-big', heldBy('gpu-b', Infinity)]]) }))?.queue).toBe('training-big');
    expect(claimWins(heldBy('gpu-b', Infinity), 'gpu-a', Infinity)).toBe(false);
  });

  it('a host that does not hold the reservation keeps serving smaller jobs', () => {
    const d = decide(pooled({ reservations: new Map([['training-big', heldBy('gpu-b', 140_000)]]) }));
    expect(d.reservedFor).toBeUndefined();
    expect(names(d.order)).toEqual(['training-small']);
  });

  it('the holding host starts no smaller GPU job without backfill, and drops its hold once another host has taken it', () => {
    const d = decide(pooled());
    expect(d.reservedFor).toBe('training-big');
    expect(names(d.order)).toEqual([]);
    const takenOver = pooled({ reservedFor: 'training-big', reservations: new Map([['training-big', heldBy('gpu-b', 120_000)]]) });
    expect(decide(takenOver).reservedFor).toBeUndefined();
  });

  it('with no history (no estimate) backfill admits nothing: the plain reservation', () => {
    const d = decide(pooled({ policy: 'backfill' }));
    expect(d.reservedFor).toBe('training-big');
    expect(names(d.order)).toEqual([]);
  });

  it('backfill lets a job start that is expected to end before the reservation, with a deadline, and refuses one that would delay it', () => {
    // Expected start 160 s; now 100 s. A 50 s job ends at 150 s: in.
    const fitsBefore = decide(pooled({ policy: 'backfill', queues: [big(), small(50_000)], backfillOverrunMs: 7_000 }));
    expect(names(fitsBefore.order)).toEqual(['training-small']);
    expect(fitsBefore.backfill.get('training-small')).toBe(167_000);
    // A 70 s job would end at 170 s, after the reserved job's start: refused.
    const tooLong = decide(pooled({ policy: 'backfill', queues: [big(), small(70_000)] }));
    expect(names(tooLong.order)).toEqual([]);
  });

  it('backfill lets any job use GPUs the reserved job will not need at its start', () => {
    // 8-GPU host, 4 GPUs free, one 4-GPU job to end at 160 s: at 160 s 8 are free, the big job
    // needs 4, so a 1-GPU job of unknown length may take one of the 4 spare ones.
    const d = decide(
      pooled({
        policy: 'backfill',
        queues: [{ ...big(), gpus: 6 }, small()],
        capacity: { gpusTotal: 8, gpusFree: 4, cpuSlotsTotal: 1, cpuSlotsFree: 1 },
        running: [run('r1', 4, 160_000)],
      }),
    );
    expect(d.reservedFor).toBe('training-big');
    expect(names(d.order)).toEqual(['training-small']);
    expect(d.backfill.has('training-small')).toBe(false);
  });

  it('hands back an overrunning backfilled job only when the reserved job waits for its GPUs', () => {
    // Both running jobs are backfills past their deadline; 2 free + their 2 = the 4 needed.
    const late = pooled({ policy: 'backfill', now: 200_000, running: [run('r1', 1, 200_000, 190_000), run('r2', 1, 200_000, 195_000)] });
    expect(decide(late).stop).toEqual(['r1', 'r2']);
    // One is not a backfill: ending the other would not let the big job start.
    const notEnough = pooled({ policy: 'backfill', now: 200_000, running: [run('r1', 1, 200_000, 190_000), run('r2', 1, 250_000)] });
    expect(decide(notEnough).stop).toEqual([]);
    // Before the deadline: nothing, but the worker is told when to look again.
    const early = pooled({ policy: 'backfill', now: 180_000, running: [run('r1', 1, 200_000, 190_000), run('r2', 1, 200_000, 195_000)] });
    expect(decide(early)).toMatchObject({ stop: [], wakeAt: 190_000 });
  });

  it('counts a backfilled job as gone by its deadline, so its slow ETA cannot push the reservation out', () => {
    // r2 is a backfill reporting an ETA of 900 s but must be gone by 170 s.
    const s = pooled({ policy: 'backfill', running: [run('r1', 1, 130_000), run('r2', 1, 900_000, 170_000)] });
    expect(hold(s)?.expectedStartAt).toBe(170_000);
  });

  it('lets a job enqueued before the held one start first: it is ahead in line (not under the host policy)', () => {
    // The 1-GPU head waits since t = 5 s, the held 4-GPU one since 10 s.
    const ahead = { ...training('training-small', 1, 5_000) };
    const d = decide(pooled({ queues: [big(), ahead], reservedFor: 'training-big' }));
    expect(d.reservedFor).toBe('training-big');
    expect(names(d.order)).toEqual(['training-small']);
    expect(decide(pooled({ policy: 'host', queues: [big(), ahead], reservedFor: 'training-big' })).order).toEqual([]);
    // Older but of a lower class (a preempted job keeps its enqueue time): not ahead of it.
    const urgentBig = { ...big(), headClass: 2 };
    expect(decide(pooled({ queues: [urgentBig, { ...ahead, headClass: 0 }], reservedFor: 'training-big' })).order).toEqual([]);
  });

  it('asks to be woken when a blocked job will reach the guard', () => {
    expect(decide(pooled({ queues: [big(98_000), small()] })).wakeAt).toBe(103_000);
  });

  it('none: never holds, the oldest job that fits goes first', () => {
    const d = decide(pooled({ policy: 'none' }));
    expect(d.reservedFor).toBeUndefined();
    expect(names(d.order)).toEqual(['training-small']);
  });
});

describe('expected ends and starts', () => {
  it('takes the progress rate first, then the learned duration, never past the timeout, never in the past', () => {
    expect(expectedEnd({ startedAt: 0, percent: 25, estimateMs: 1_000 }, 10_000)).toBe(40_000);
    expect(expectedEnd({ startedAt: 0, estimateMs: 30_000 }, 10_000)).toBe(30_000);
    expect(expectedEnd({ startedAt: 0, estimateMs: 30_000, timeoutMs: 20_000 }, 10_000)).toBe(20_000);
    expect(expectedEnd({ startedAt: 0, timeoutMs: 20_000 }, 10_000)).toBe(20_000);
    expect(expectedEnd({ startedAt: 0 }, 10_000)).toBe(Infinity);
    // Two reports: the rate between them, not since the start (5 s of start-up before the first).
    const twoPoints = { startedAt: 0, percent: 30, firstProgress: { at: 5_000, percent: 10 }, lastProgress: { at: 7_000, percent: 30 } };
    expect(expectedEnd(twoPoints, 7_000)).toBe(14_000);
    expect(expectedEnd({ startedAt: 0, estimateMs: 5_000 }, 10_000)).toBe(10_000);
  });

  it('estimates a high percentile once there are enough samples', () => {
    expect(estimateFromSamples([100, 200])).toBeUndefined();
    expect(estimateFromSamples([1, 2, 3, 4, 5, 6, 7, 8, 9, 10])).toBe(9);
  });

  it('expects enough GPUs free when enough running jobs have ended, earliest first', () => {
    const cap = { gpusTotal: 4, gpusFree: 1, cpuSlotsTotal: 0, cpuSlotsFree: 0 };
    const running = [
      { id: 'a', queue: 'q', gpus: 2, expectedEndAt: 50 },
      { id: 'b', queue: 'q', gpus: 1, expectedEndAt: 20 },
    ];
    expect(expectedStart(1, cap, running, 0)).toBe(0);
    expect(expectedStart(2, cap, running, 0)).toBe(20);
    expect(expectedStart(4, cap, running, 0)).toBe(50);
    expect(expectedStart(5, cap, running, 0)).toBe(Infinity);
  });
});

describe('preemption by priority class', () => {
  // A 4-GPU host, full: an urgent (rank 2) 2-GPU job waits since t = 0; now is 100 s.
  const urgent: QueueState = { name: 'training-urgent', priority: 5, gpus: 2, headAt: 0, headId: 'u-1', headClass: 2 };
  const job = (id: string, classRank: number, lastCheckpointAt?: number, extra: Partial<RunningGpuJob> = {}): RunningGpuJob => ({
    id,
    queue: `training-${id}`,
    gpus: 1,
    expectedEndAt: 1_000_000,
    classRank,
    ...(lastCheckpointAt !== undefined ? { lastCheckpointAt } : {}),
    ...extra,
  });
  function full(running: RunningGpuJob[], over: Partial<DispatchSnapshot> = {}): DispatchSnapshot {
    return {
      now: 100_000,
      host: 'gpu-a',
      policy: 'backfill',
      queues: [urgent],
      capacity: { gpusTotal: 4, gpusFree: 4 - running.reduce((n, r) => n + r.gpus, 0), cpuSlotsTotal: 1, cpuSlotsFree: 1 },
      running,
      reservations: new Map(),
      starvationGuardMs: 1_000,
      preemptAfterMs: 60_000,
      preemptIntervalMs: 600_000,
      ...over,
    };
  }

  it('stops the fewest lower-class jobs that free enough GPUs: lowest class first, then the most recently checkpointed', () => {
    const running = [job('bg-old', 0, 10_000), job('normal', 1, 99_000), job('bg-new', 0, 90_000), job('bg-none', 0)];
    const d = decide(full(running));
    expect(d.reservedFor).toBe('training-urgent');
    expect(d.hold?.expectedStartAt).toBe(100_000); // it can start now, by preempting
    expect(d.preempt).toEqual(['bg-new', 'bg-old']);
  });

  it('never a job of the same or a higher class, never one preempted within the interval, and nothing when it would not free enough', () => {
    expect(decide(full([job('a', 2), job('b', 2), job('c', 2), job('d', 1)])).preempt).toEqual([]);
    const recent = full([job('a', 0, 1, { preemptedAt: 50_000 }), job('b', 0), job('c', 1), job('d', 2)]);
    expect(decide(recent).preempt).toEqual(['b', 'c']);
    expect(decide(full([job('a', 0, 1, { preemptedAt: 50_000 }), job('b', 0), job('c', 2), job('d', 2)])).preempt).toEqual([]);
  });

  it('waits its preemptAfter first, and is woken for it', () => {
    const early = full([job('a', 0), job('b', 0), job('c', 0), job('d', 0)], { now: 30_000 });
    const d = decide(early);
    expect(d.preempt).toEqual([]);
    expect(d.wakeAt).toBe(60_000);
  });

  it('counts jobs already being stopped, so it does not stop more than it needs', () => {
    const d = decide(full([job('a', 0, 1, { stopping: true }), job('b', 0), job('c', 0), job('d', 0)]));
    expect(d.preempt).toHaveLength(1);
  });

  it('does not preempt under the host policy (every host would)', () => {
    expect(decide(full([job('a', 0), job('b', 0), job('c', 0), job('d', 0)], { policy: 'host' })).preempt).toEqual([]);
  });
});

describe('assembling a snapshot', () => {
  const gpuQueue = (name: string, gpus: number): QueueState => ({ name, priority: 5, gpus });
  const view = { queues: [gpuQueue('training-big', 2), gpuQueue('training-small', 1), dataSync], capacity: { gpusTotal: 2, gpusFree: 1, cpuSlotsTotal: 1, cpuSlotsFree: 1 }, reservedFor: undefined };
  const reads = (policy: DispatchSnapshot['policy']) => ({
    now: 10_000,
    host: 'gpu-a',
    policy,
    starvationGuardMs: 5_000,
    backfillOverrunMs: 7_000,
    // training-small was read and has nothing waiting; training-big was not read.
    heads: new Map([['training-small', undefined], ['data-sync', { id: 'data-sync.1', at: 9_000 }]]),
    reservations: new Map<string, PoolReservation>(),
    estimate: (queue: string) => (queue === 'training-small' ? 4_000 : undefined),
  });
  const running = [{ id: 'r1', queue: 'training-small', gpus: 1, startedAt: 8_000, timeoutMs: 60_000, backfillDeadlineAt: 20_000 }];

  it('gives heads only to the queues read, estimates only to the pool policies, and expected ends to running jobs', () => {
    const s = assembleSnapshot(view, running, reads('backfill'));
    expect(s.queues.map((q) => [q.name, 'headAt' in q, q.headId, q.estimateMs])).toEqual([
      ['training-big', false, undefined, undefined],
      ['training-small', true, undefined, 4_000],
      ['data-sync', true, 'data-sync.1', undefined],
    ]);
    expect(s.running).toEqual([{ id: 'r1', queue: 'training-small', gpus: 1, expectedEndAt: 12_000, backfillDeadlineAt: 20_000 }]);
    expect(s).toMatchObject({ now: 10_000, host: 'gpu-a', policy: 'backfill', starvationGuardMs: 5_000, backfillOverrunMs: 7_000 });
    expect(assembleSnapshot(view, running, reads('host')).queues.every((q) => q.estimateMs === undefined)).toBe(true);
  });

  it('claims a hold again only when it changed by more than half the takeover margin', () => {
    const h = { queue: 'training-big', expectedStartAt: 100_000, jobId: 'j1' };
    expect(claimDue(undefined, h)).toBe(true);
    expect(claimDue(h, { ...h, expectedStartAt: 100_000 + TAKEOVER_MARGIN_MS / 2 })).toBe(false);
    expect(claimDue(h, { ...h, expectedStartAt: 100_001 + TAKEOVER_MARGIN_MS / 2 })).toBe(true);
    expect(claimDue(h, { ...h, jobId: 'j2' })).toBe(true);
    expect(claimDue({ ...h, expectedStartAt: Infinity }, { ...h, expectedStartAt: Infinity })).toBe(false);
  });
});
