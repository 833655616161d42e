// The scheduler process: a timer per cron schedule, armed for its next fire time. Any number of
// replicas may run: every one fires, and the unique key on fires lets exactly one enqueue.
// Every replica also repairs, on start and then every `repairEveryMs`, the fires whose claim's
// lease ran out unsettled (their claimer died or hangs between claiming and enqueueing), and on
// start catches up on fires missed while no scheduler ran.
import type { ScheduleConfig } from '../config/fleet-schema.js';
import { probeRedis } from '../health.js';
import type { Logger } from '../logger.js';
import { catchUp } from './catch-up.js';
import { completeFire, DEFAULT_CLAIM_LEASE_MS, fireSchedule, replicaOf, type FireDeps, type FireResult } from './fire.js';
import { cronOf } from './fire-times.js';

export interface SchedulerDeps extends FireDeps {
  /** Milliseconds since the epoch; injectable so catch-up can be tested with a moved clock. */
  now?: () => number;
  /** How often this replica looks for claims whose lease ran out. */
  repairEveryMs?: number;
}

export const DEFAULT_REPAIR_EVERY_MS = 1_000;

export class Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private repairTimer: NodeJS.Timeout | undefined;
  private repairHeld = false;
  private readonly inFlight = new Set<Promise<unknown>>();
  private readonly log: Logger;
  private readonly now: () => number;
  private stopped = false;
  private closing: Promise<void> | undefined;

  constructor(private readonly deps: SchedulerDeps) {
    this.log = deps.logger.child({ component: 'scheduler' });
    this.now = deps.now ?? Date.now;
  }

  private get fireDeps(): FireDeps {
    return this.deps;
  }

  async start(): Promise<void> {
    // Series at 0 from the start, so an alert's increase() sees the first miss or failure.
    for (const name of Object.keys(this.deps.fleet.schedules)) {
      for (const outcome of ['missed', 'failed']) this.deps.metrics?.scheduleFires.inc({ schedule: name, outcome }, 0);
    }
    await this.repair();
    for (const [name, s] of Object.entries(this.deps.fleet.schedules)) {
      const state = await this.deps.schedules.ensure(name);
      if (s.cron === undefined) continue;
      if (!state.paused) {
        const last = await this.deps.schedules.lastScheduled(name);
        const since = Math.max(
          Date.parse(state.knownSince),
          state.resumedAt ? Date.parse(state.resumedAt) : 0,
          last ? Date.parse(last.scheduledFor) : 0,
        );
        const { enqueued, missed } = await catchUp(this.fireDeps, name, s, new Date(since), new Date(this.now()));
        if (enqueued.length || missed.length) {
          this.log.info({ schedule: name, caughtUp: enqueued.map((e) => e.fire?.scheduledFor), missed: missed.length }, 'caught up');
        }
      }
      this.arm(name, s, this.now());
    }
    this.armRepair();
    this.log.info({ schedules: Object.keys(this.deps.fleet.schedules), replica: replicaOf(this.deps) }, 'scheduler started');
  }

  /**
   * Takes over this replica's schedules' claims whose lease ran out and finishes them, under the
   * same derived job ids; the fire history names this replica as their repairer. A replica whose
   * Redis does not answer now takes nothing: it would only hang on the enqueue, holding the
   * claim for another lease (a partitioned claimer would even take its own claims back).
   */
  async repair(): Promise<FireResult[]> {
    const schedules = this.deps.fleet.schedules;
    const redis = await probeRedis(this.deps.queues.connection, this.deps.repairEveryMs ?? DEFAULT_REPAIR_EVERY_MS);
    if (!redis.ok) {
      // Said once per outage, not every period.
      if (!this.repairHeld) this.log.warn({ error: redis.error }, 'not repairing claims while Redis does not answer');
      this.repairHeld = true;
      return [];
    }
    this.repairHeld = false;
    const taken = await this.deps.schedules.takeOverExpired(
      Object.keys(schedules),
      replicaOf(this.deps),
      this.deps.claimLeaseMs ?? DEFAULT_CLAIM_LEASE_MS,
    );
    const results: FireResult[] = [];
    for (const fire of taken) {
      this.log.warn({ schedule: fire.schedule, scheduledFor: fire.scheduledFor, abandonedBy: fire.abandonedBy }, 'repairing a fire whose claim ran out unsettled');
      results.push(await completeFire(this.fireDeps, fire.schedule, schedules[fire.schedule]!, fire, { repair: true }));
    }
    return results;
  }

  private armRepair(): void {
    if (this.stopped) return;
    this.repairTimer = setTimeout(() => {
      const work = this.repair()
        .catch((err: unknown) => this.log.error({ err }, 'repairing claims failed'))
        .finally(() => {
          this.inFlight.delete(work);
          this.armRepair();
        });
      this.inFlight.add(work);
    }, this.deps.repairEveryMs ?? DEFAULT_REPAIR_EVERY_MS);
  }

  /** Sets the timer for the first fire strictly after `after`. */
  private arm(name: string, s: ScheduleConfig, after: number): void {
    if (this.stopped) return;
    const next = cronOf(s)?.nextRun(new Date(after));
    if (!next) return;
    const at = next.getTime();
    const wait = Math.max(0, at - this.now());
    // setTimeout takes at most ~24.8 days; a weekly cron is well within, a yearly one re-arms.
    const timer = setTimeout(() => this.onTimer(name, s, at), Math.min(wait, 2 ** 31 - 1));
    this.timers.set(name, timer);
  }

  private onTimer(name: string, s: ScheduleConfig, at: number): void {
    if (this.stopped) return;
    if (this.now() < at) return this.arm(name, s, at - 1); // woke early (clock or long timer): wait the rest
    const work = fireSchedule(this.fireDeps, name, s, { scheduledFor: new Date(at), source: 'cron', manual: false, actor: 'scheduler' })
      .catch((err: unknown) => this.log.error({ err, schedule: name }, 'fire failed'))
      .finally(() => this.inFlight.delete(work));
    this.inFlight.add(work);
    this.arm(name, s, at);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.stopped = true;
      clearTimeout(this.repairTimer);
      for (const t of this.timers.values()) clearTimeout(t);
      this.timers.clear();
      await Promise.all(this.inFlight);
    })();
    return this.closing;
  }
}
