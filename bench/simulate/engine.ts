// A discrete-event simulation of a fleet of host workers on a virtual clock. Each host runs the
// loop of HostWorker (worker-loop.ts): a pass takes a snapshot (assembled by the policy's
// assembleSnapshot from the simulated queues, reservations and learned durations), calls the
// policy's decide, hands back overdue backfills, claims the hold (the store applies claimWins),
// tries the decision's queues in order and starts the first job it gets, clears its hold once the
// reserved queue's job starts (afterStart), and repeats until idle; then it blocks on the markers
// of the decision's queues until one is set, its own wake key is, or wakeAt comes (wait-room.ts).
// Only hosts that would wake in reality run a pass: nothing polls. Events (arrivals, run ends,
// block timeouts, heartbeats) wait in a binary heap; hosts woken at the current time run in the
// order Redis would answer them.
//
// Left out: the worker's longest block (maxBlockMs, 5 s), which bounds how late a delayed job or
// a lost wake is noticed (this model has neither; set maxBlockMs to add it), and the 10 s
// staleness of other hosts' learned durations (here every completion counts at once).
import type { LoadedFleet } from '../../src/config/load-fleet.js';
import { queueSpecs, type QueueSpec } from '../../src/queues/placement.js';
import { classRank } from '../../src/config/priority-class.js';
import {
  assembleSnapshot,
  couldBePreempted,
  decide,
  headsToRead,
  pooled,
  type DispatchDecision,
  type DispatchPolicy,
  type DispatchSnapshot,
  type Head,
  type HostView,
  type PoolReservation,
} from '../../src/workers/policy/index.js';
import { DurationHistory } from './durations.js';
import { EventQueue } from './event-queue.js';
import { SimHost } from './host.js';
import { WaitList, type PlannedJob, type SimJob } from './jobs.js';
import { ReservationStore } from './reservation-store.js';
import { Samples } from './samples.js';
import { WaitRoom } from './wait-room.js';
import { WorkerLoop, type SimEvent, type SimOptions, type Tally, type World } from './worker-loop.js';

export type { SimOptions } from './worker-loop.js';

export interface SimResult {
  policy: DispatchPolicy;
  jobs: SimJob[];
  /** From the first arrival (time 0) to the last end. */
  makespanMs: number;
  /** GPU time of the runs that completed, and of the runs handed back unfinished. */
  usedGpuMs: number;
  wastedGpuMs: number;
  /** Wall time of each call of decide (ms). */
  decideMs: Samples;
  passes: number;
  handBacks: number;
  takeovers: number;
  events: number;
  wallMs: number;
}

/** The run ended with jobs still waiting and nothing left that would wake a host. */
export class SimulationStalled extends Error {
  override name = 'SimulationStalled';
}

export class Simulation implements World {
  readonly hosts: SimHost[];
  readonly queues = new Map<string, { spec: QueueSpec; waiting: WaitList }>();
  readonly store = new ReservationStore();
  readonly history = new DurationHistory();
  readonly jobs: SimJob[];
  now = 0;
  private readonly events = new EventQueue<SimEvent>();
  /** Hosts woken at the current time, in the order Redis would answer them. */
  private readonly ready: { host: SimHost; popped: string | undefined }[] = [];
  private readyHead = 0;
  readonly room: WaitRoom;
  readonly tally: Tally = { done: 0, passes: 0, handBacks: 0, usedGpuMs: 0, wastedGpuMs: 0 };
  private readonly loop = new WorkerLoop(this);
  private readonly decideMs = new Samples();
  /** Events other than heartbeats still to come. */
  private pendingWork = 0;
  private eventCount = 0;

  constructor(
    fleet: LoadedFleet,
    planned: readonly PlannedJob[],
    readonly options: SimOptions,
  ) {
    for (const spec of queueSpecs(fleet)) this.queues.set(spec.name, { spec, waiting: new WaitList() });
    const ids = Object.keys(fleet.hosts);
    this.hosts = ids.map((id, i) => new SimHost(id, i, fleet, Math.floor((i * options.heartbeatMs) / ids.length)));
    this.jobs = planned.map((p) => {
      const q = this.queues.get(p.queue);
      if (!q) throw new Error(`job ${p.id}: unknown queue "${p.queue}"`);
      if (p.durationMs >= q.spec.command.timeoutSeconds * 1000) throw new Error(`job ${p.id}: runs ${p.durationMs} ms, not less than its command's timeout`);
      return { ...p, gpus: q.spec.gpus, pool: q.spec.pool, handBacks: 0 };
    });
    this.room = new WaitRoom((i, popped) => this.ready.push({ host: this.hosts[i]!, popped }));
  }

  host(id: string): SimHost {
    const host = this.hosts.find((h) => h.id === id);
    if (!host) throw new Error(`unknown host "${id}"`);
    return host;
  }

  run(): SimResult {
    const started = performance.now();
    for (const job of this.jobs) this.schedule({ at: job.arriveAt, kind: 'arrive', job });
    // Every worker starts with a pass, before the first job arrives.
    for (const host of this.hosts) this.ready.push({ host, popped: undefined });
    this.drain();
    let idleSince: number | undefined;
    while (this.tally.done < this.jobs.length) {
      // Only heartbeats left: they may still wake a host whose reservation was taken over, but
      // after a few periods with nothing else to do, nothing ever will.
      if (this.pendingWork > 0) idleSince = undefined;
      else if (this.events.size === 0 || this.now - (idleSince ??= this.now) > 3 * this.options.heartbeatMs) {
        const waiting = [...this.queues.values()].reduce((n, q) => n + q.waiting.size, 0);
        throw new SimulationStalled(`${this.options.policy}: at ${this.now} ms ${this.jobs.length - this.tally.done} jobs are unfinished (${waiting} waiting) and nothing would wake a host`);
      }
      const event = this.events.pop()!;
      if (event.kind !== 'beat') this.pendingWork--;
      this.now = event.at;
      this.eventCount++;
      this.handle(event);
      this.drain();
    }
    return {
      policy: this.options.policy,
      jobs: this.jobs,
      makespanMs: Math.max(0, ...this.jobs.map((j) => j.endAt!)),
      usedGpuMs: this.tally.usedGpuMs,
      wastedGpuMs: this.tally.wastedGpuMs,
      decideMs: this.decideMs,
      passes: this.tally.passes,
      handBacks: this.tally.handBacks,
      takeovers: this.store.takeovers,
      events: this.eventCount,
      wallMs: performance.now() - started,
    };
  }

  /**
   * The decision step of a host: its snapshot, assembled as readSnapshot assembles the worker's
   * (the heads headsToRead names, the stored reservations of those queues, learned durations, the
   * running jobs' facts), and the policy's decision on it.
   */
  decisionFor(host: SimHost): { snapshot: DispatchSnapshot; decision: DispatchDecision } {
    const { policy, starvationGuardMs, backfillOverrunMs, preemptAfterMs, preemptIntervalMs } = this.options;
    const view: HostView = { queues: host.queues, capacity: host.capacity.state(), reservedFor: host.reservedFor };
    const facts = host.facts(this.now);
    const names = headsToRead(view, couldBePreempted(policy, facts, classRank('urgent')));
    const heads = new Map<string, Head | undefined>();
    for (const name of names) {
      const job = this.queues.get(name)!.waiting.peek();
      heads.set(name, job ? { id: job.id, at: job.arriveAt, ...(job.classRank !== undefined ? { classRank: job.classRank } : {}) } : undefined);
    }
    const reservations = pooled(policy) ? this.store.read(names, this.now) : new Map<string, PoolReservation>();
    const snapshot = assembleSnapshot(view, facts, {
      now: this.now,
      host: host.id,
      policy,
      starvationGuardMs,
      backfillOverrunMs,
      ...(preemptAfterMs !== undefined ? { preemptAfterMs } : {}),
      ...(preemptIntervalMs !== undefined ? { preemptIntervalMs } : {}),
      heads,
      reservations,
      estimate: (queue) => this.history.estimate(queue),
    });
    const t0 = performance.now();
    const decision = decide(snapshot);
    this.decideMs.add(performance.now() - t0);
    this.options.onDecision?.(host.id, snapshot, decision);
    return { snapshot, decision };
  }

  schedule(event: SimEvent): void {
    if (event.kind !== 'beat') this.pendingWork++;
    this.events.push(event);
  }

  private handle(event: SimEvent): void {
    switch (event.kind) {
      case 'arrive': {
        this.queues.get(event.job.queue)!.waiting.push(event.job);
        this.room.mark(event.job.queue);
        return;
      }
      case 'end':
        return this.loop.ended(event.host, event.run, event.handBack);
      case 'timeout':
        return this.room.timeout(event.host.index, event.token);
      case 'beat':
        return this.loop.renewHold(event.host);
    }
  }

  private drain(): void {
    while (this.readyHead < this.ready.length) {
      const { host, popped } = this.ready[this.readyHead++]!;
      this.loop.pass(host, popped);
    }
    this.ready.length = 0;
    this.readyHead = 0;
  }
}
