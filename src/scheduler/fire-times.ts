// Fire times from croner, time zone aware. DST, as croner computes it: a fixed time that falls in
// the hour skipped in spring fires at the first valid time after it (02:30 -> 03:00 on the
// day New York springs forward), and a time in the hour repeated in autumn fires once, at its
// first occurrence.
import { Cron } from 'croner';
import type { ScheduleConfig } from '../config/fleet-schema.js';

export function cronOf(s: Pick<ScheduleConfig, 'cron' | 'timezone'>): Cron | undefined {
  return s.cron === undefined ? undefined : new Cron(s.cron, { timezone: s.timezone, paused: true });
}

/** The next `n` fire times strictly after `from`. */
export function nextFires(s: Pick<ScheduleConfig, 'cron' | 'timezone'>, n: number, from: Date): Date[] {
  return cronOf(s)?.nextRuns(n, from) ?? [];
}

/** The fire before `at` (exclusive), for the data interval a fire covers. */
export function previousFire(s: Pick<ScheduleConfig, 'cron' | 'timezone'>, at: Date): Date | undefined {
  return cronOf(s)?.previousRuns(1, new Date(at.getTime() - 1))[0] ?? undefined;
}

/** Up to `limit` fire times in (after, upTo], newest last. */
export function firesBetween(
  s: Pick<ScheduleConfig, 'cron' | 'timezone'>,
  after: Date,
  upTo: Date,
  limit: number,
): Date[] {
  const cron = cronOf(s);
  if (!cron) return [];
  return cron
    .previousRuns(limit, new Date(upTo.getTime() + 1))
    .filter((t) => t.getTime() > after.getTime() && t.getTime() <= upTo.getTime())
    .sort((a, b) => a.getTime() - b.getTime());
}
