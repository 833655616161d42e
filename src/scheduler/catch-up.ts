// Fires missed while no scheduler ran (or, when asked on resume, while the schedule was paused).
// Within the schedule's catch-up window the most recent one is enqueued (or, with mode `all`, up
// to `max` of them); every other missed fire is recorded as `missed`. The unique key on fires
// makes a second start (or a second replica) find them claimed and do nothing.
import type { ScheduleConfig } from '../config/fleet-schema.js';
import { fireSchedule, type FireDeps, type FireResult } from './fire.js';
import { firesBetween } from './fire-times.js';

/** How many missed fires are looked at, and recorded, at most. */
const LOOK_BACK = 200;

export async function catchUp(
  deps: FireDeps,
  name: string,
  s: ScheduleConfig,
  since: Date,
  now: Date,
  source: 'catch-up' | 'resume' = 'catch-up',
): Promise<{ enqueued: FireResult[]; missed: Date[] }> {
  const missedTimes = firesBetween(s, since, now, LOOK_BACK);
  if (missedTimes.length === 0) return { enqueued: [], missed: [] };
  const windowStart = now.getTime() - s.catchUp.windowSeconds * 1000;
  const inWindow = missedTimes.filter((t) => t.getTime() >= windowStart);
  const chosen = s.catchUp.mode === 'all' ? inWindow.slice(-s.catchUp.max) : inWindow.slice(-1);
  const chosenSet = new Set(chosen.map((t) => t.getTime()));
  const missed = missedTimes.filter((t) => !chosenSet.has(t.getTime()));
  await deps.schedules.recordMissed(
    name,
    missed,
    s.catchUp.mode === 'all' ? 'missed while no scheduler ran; beyond the catch-up window or its cap' : 'missed while no scheduler ran; only the most recent is caught up',
  );
  if (missed.length) deps.metrics?.scheduleFires.inc({ schedule: name, outcome: 'missed' }, missed.length);
  const enqueued: FireResult[] = [];
  for (const at of chosen) {
    enqueued.push(await fireSchedule(deps, name, s, { scheduledFor: at, source, manual: false, actor: 'scheduler' }));
  }
  return { enqueued, missed };
}
