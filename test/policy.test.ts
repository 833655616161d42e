// The dispatch policy as pure functions: each decision pinned from a hand-made snapshot, with no
// Redis and no clock.
import { describe, expect, it } from 'vitest';
import {
  afterStart,
  decide,
  fillOrder,
  headsToRead,
  reservation,
  serveableQueues,
  type DispatchSnapshot,
  type QueueState,
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
    expect(decide(s)).toEqual({ reservedFor: undefined, order: [expect.objectContaining({ name: 'training-small' })] });
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
    expect(decide(after)).toEqual({ reservedFor: 'training-big', order: [] });
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
