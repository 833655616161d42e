// The loop of HostWorker (src/workers/host-worker.ts), step for step, on the simulated world: a
// pass (fill, then give back a marker taken for a queue not tried, then block), fill's decide-
// claim-start rounds (startOne, reserve, claim), launch, the hand-back of an overrunning backfill,
// the release of a run's lease (which sets the host's wake key) and the heartbeat's renewHold.
// The I/O between the steps takes no virtual time.
import type { QueueSpec } from '../../src/queues/placement.js';
import {
  afterStart,
  claimDue,
  pooled,
  type DispatchDecision,
  type DispatchPolicy,
  type DispatchSnapshot,
  type Hold,
  type PoolReservation,
} from '../../src/workers/policy/index.js';
import type { DurationHistory } from './durations.js';
import type { SimHost, SimRun } from './host.js';
import type { SimJob, WaitList } from './jobs.js';
import type { ReservationStore } from './reservation-store.js';
import type { WaitRoom } from './wait-room.js';

export interface SimOptions {
  policy: DispatchPolicy;
  starvationGuardMs: number;
  backfillOverrunMs: number;
  /** Preemption needs priority classes, which only a replayed trace has. */
  preemptAfterMs?: number;
  preemptIntervalMs?: number;
  /** The worker's heartbeat: it renews a pool reservation (lease: three periods) and notices a takeover. */
  heartbeatMs: number;
  /** From handing back an overrunning backfill to its GPUs being free (the process group ending). */
  handBackMs: number;
  /** The worker's longest single block; undefined: a block ends only on a marker, a wake or wakeAt. */
  maxBlockMs?: number;
  /** Sees every decision with the snapshot it was made on, as the worker's onDecision does. */
  onDecision?: (host: string, snapshot: DispatchSnapshot, decision: DispatchDecision) => void;
}

export type SimEvent =
  | { at: number; kind: 'arrive'; job: SimJob }
  | { at: number; kind: 'end'; host: SimHost; run: SimRun; handBack: boolean }
  | { at: number; kind: 'timeout'; host: SimHost; token: number }
  | { at: number; kind: 'beat'; host: SimHost };

export interface Tally {
  done: number;
  passes: number;
  handBacks: number;
  usedGpuMs: number;
  wastedGpuMs: number;
}

/** What the worker's loop reads and changes: the simulation (engine.ts). */
export interface World {
  readonly options: SimOptions;
  readonly now: number;
  readonly queues: ReadonlyMap<string, { spec: QueueSpec; waiting: WaitList }>;
  readonly store: ReservationStore;
  readonly history: DurationHistory;
  readonly room: WaitRoom;
  readonly tally: Tally;
  schedule(event: SimEvent): void;
  decisionFor(host: SimHost): { snapshot: DispatchSnapshot; decision: DispatchDecision };
}

/** More rounds in one fill than any real one needs: a loop the policy and the worker would both be stuck in. */
const MAX_ROUNDS = 100_000;

export class WorkerLoop {
  constructor(private readonly w: World) {}

  /** One turn of HostWorker.loop: fill, give back a marker taken for a queue not tried, block. */
  pass(host: SimHost, popped: string | undefined): void {
    this.w.tally.passes++;
    const tried = this.fill(host);
    if (popped !== undefined && !tried.has(popped)) this.w.room.mark(popped);
    const token = this.w.room.block(host.index, host.waitOn.queues);
    if (token === undefined) return; // a marker or its wake key was set: it is ready again
    const { until } = host.waitOn;
    const timeoutMs = Math.min(this.w.options.maxBlockMs ?? Infinity, until === undefined ? Infinity : until - this.w.now);
    // BZPOPMIN's timeout, at least 10 ms as the worker asks.
    if (timeoutMs < Infinity) this.w.schedule({ at: this.w.now + Math.max(timeoutMs, 10), kind: 'timeout', host, token });
  }

  /** HostWorker.fill: decide and start jobs while there is capacity and work; returns the queues tried. */
  private fill(host: SimHost): Set<string> {
    const tried = new Set<string>();
    const empty = new Set<string>();
    let outcome: 'started' | 'stale' | 'idle' = 'idle';
    let rounds = 0;
    do {
      if (++rounds > MAX_ROUNDS) throw new Error(`host ${host.id} at ${this.w.now} ms: ${MAX_ROUNDS} decisions in one pass`);
      const { decision } = this.w.decisionFor(host);
      for (const id of decision.stop) this.handBack(host, id);
      if (!this.reserve(host, decision)) {
        outcome = 'stale';
        continue;
      }
      host.waitOn = { queues: decision.order.map((q) => q.name), ...(decision.wakeAt !== undefined ? { until: decision.wakeAt } : {}) };
      outcome = this.startOne(host, decision, tried, empty);
    } while (outcome !== 'idle');
    return tried;
  }

  /** HostWorker.startOne: the first job the decision's queues give, in order, is started. */
  private startOne(host: SimHost, { order, backfill }: DispatchDecision, tried: Set<string>, empty: Set<string>): 'started' | 'stale' | 'idle' {
    let missed = false;
    for (const { name, gpus } of order) {
      if (empty.has(name)) continue;
      if (gpus > 0 && missed) return 'stale';
      tried.add(name);
      const job = this.take(name);
      if (!job) {
        empty.add(name);
        missed = true;
        continue;
      }
      this.launch(host, name, job, backfill.get(name));
      empty.clear();
      return 'started';
    }
    return 'idle';
  }

  /** getNextJob: the queue's next job; BullMQ sets the queue's marker again after every take. */
  private take(queue: string): SimJob | undefined {
    const job = this.w.queues.get(queue)!.waiting.shift();
    if (job) this.w.room.mark(queue);
    return job;
  }

  /** HostWorker.reserve: take the decision's hold, in the store for the pool policies. */
  private reserve(host: SimHost, { hold }: DispatchDecision): boolean {
    const inStore = pooled(this.w.options.policy);
    const previous = host.hold;
    if (previous && previous.queue !== hold?.queue && inStore) this.w.store.release(previous.queue, host.id);
    if (hold && inStore && claimDue(previous, hold) && !this.claim(host, hold)) {
      host.hold = undefined;
      host.reservedFor = undefined;
      return false;
    }
    host.hold = hold;
    host.reservedFor = hold?.queue;
    if (hold && inStore) this.scheduleBeat(host);
    return true;
  }

  private claim(host: SimHost, hold: Hold): boolean {
    const bid: PoolReservation = { queue: hold.queue, host: host.id, ...(hold.jobId ? { jobId: hold.jobId } : {}), expectedStartAt: hold.expectedStartAt };
    return this.w.store.claim(bid, this.w.now, this.w.options.heartbeatMs * 3).host === host.id;
  }

  /** HostWorker.renewHold, on each heartbeat while it holds: renew, or learn it was taken over. */
  renewHold(host: SimHost): void {
    host.beatAt = undefined;
    if (!host.hold || !pooled(this.w.options.policy)) return;
    if (!this.claim(host, host.hold)) {
      host.hold = undefined;
      host.reservedFor = undefined;
      this.w.room.wake(host.index);
      return;
    }
    this.scheduleBeat(host);
  }

  private scheduleBeat(host: SimHost): void {
    if (host.beatAt !== undefined) return;
    const period = this.w.options.heartbeatMs;
    host.beatAt = host.beatPhaseMs + (Math.floor((this.w.now - host.beatPhaseMs) / period) + 1) * period;
    this.w.schedule({ at: host.beatAt, kind: 'beat', host });
  }

  /** HostWorker.launch: lease, run, and drop the hold once the job it was held for has started. */
  private launch(host: SimHost, queue: string, job: SimJob, backfillDeadlineAt: number | undefined): void {
    const spec = host.specs.get(queue)!;
    const lease = host.capacity.lease(job.id, spec);
    if (!lease) throw new Error(`host ${host.id} at ${this.w.now} ms: decided to start ${job.id} without the capacity for it`);
    const run: SimRun = {
      job,
      lease,
      startedAt: this.w.now,
      timeoutMs: spec.command.timeoutSeconds * 1000,
      ...(backfillDeadlineAt !== undefined ? { backfillDeadlineAt } : {}),
      stopped: false,
      ended: false,
    };
    host.running.set(job.id, run);
    host.reservedFor = afterStart(host.reservedFor, queue);
    if (host.hold && host.reservedFor === undefined) {
      const held = host.hold.queue;
      host.hold = undefined;
      if (pooled(this.w.options.policy)) this.w.store.release(held, host.id);
    }
    this.w.schedule({ at: this.w.now + job.durationMs, kind: 'end', host, run, handBack: false });
  }

  /** A running backfill overran: it ends, and goes back in front of its queue. */
  private handBack(host: SimHost, id: string): void {
    const run = host.running.get(id);
    if (!run || run.stopped) return;
    run.stopped = true;
    this.w.schedule({ at: this.w.now + this.w.options.handBackMs, kind: 'end', host, run, handBack: true });
  }

  /** A run ended (or was handed back): its lease is released and the host's wake key set. */
  ended(host: SimHost, run: SimRun, handBack: boolean): void {
    // A stopped run is settled by its stop, whatever its child did meanwhile.
    if (run.ended || (run.stopped && !handBack)) return;
    run.ended = true;
    host.running.delete(run.job.id);
    host.capacity.release(run.lease);
    const { job } = run;
    const gpuMs = job.gpus * (this.w.now - run.startedAt);
    if (handBack) {
      this.w.tally.handBacks++;
      this.w.tally.wastedGpuMs += gpuMs;
      job.handBacks++;
      this.w.queues.get(job.queue)!.waiting.pushFront(job);
      this.w.room.mark(job.queue);
    } else {
      this.w.tally.done++;
      this.w.tally.usedGpuMs += gpuMs;
      job.host = host.id;
      job.startAt = run.startedAt;
      job.endAt = this.w.now;
      if (job.gpus > 0) this.w.history.record(job.queue, this.w.now - run.startedAt);
    }
    this.w.room.wake(host.index);
  }
}
