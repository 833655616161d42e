// The scheduler process: a timer per cron schedule, armed for its next fire time. Any number of
// replicas may run: every one fires, and the unique key on fires lets exactly one enqueue.
// On start it repairs fires a dead replica claimed but never finished, and catches up on fires
// missed while no scheduler ran.
import type { ScheduleConfig } from '../config/fleet-schema.js';
import type { Logger } from '../logger.js';
import { catchUp } from './catch-up.js';
import { completeFire, fireSchedule, type FireDeps } from './fire.js';
import { cronOf } from './fire-times.js';

export interface SchedulerDeps extends FireDeps {
  /** Milliseconds since the epoch; injectable so catch-up can be tested with a moved clock. */
  now?: () => number;
}

/** A claimed fire older than this with no outcome was left by a replica that died. */
const REPAIR_AFTER_MS = 60_000;

export class Scheduler {
  private readonly timers = new Map<string, NodeJS.Timeout>();
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
    for (const [name, s] of Object.entries(this.deps.fleet.schedules)) {
      const state = await this.deps.schedules.ensure(name);
      for (const fire of await this.deps.schedules.unsettled(name, REPAIR_AFTER_MS)) {
        this.log.warn({ schedule: name, scheduledFor: fire.scheduledFor }, 'finishing a fire a dead scheduler claimed');
        await completeFire(this.fireDeps, name, s, fire);
      }
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
    this.log.info({ schedules: Object.keys(this.deps.fleet.schedules) }, 'scheduler started');
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
      for (const t of this.timers.values()) clearTimeout(t);
      this.timers.clear();
      await Promise.all(this.inFlight);
    })();
    return this.closing;
  }
}
