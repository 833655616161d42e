// schedule.missed and schedule.failed, from the fire history in Postgres. Fires missed while no
// scheduler ran are recorded by one catch-up in one statement (up to 200 at once), so they are
// told as one event per schedule and catch-up, identified by the first fire missed; a failed fire
// (its enqueue failed) is one event.
import type { Fire } from '../../registry/schedules.js';
import { makeEvent, plain, type NotificationEvent } from '../events.js';
import type { NotificationSource } from './source.js';

export const scheduleFires: NotificationSource = {
  name: 'schedule-fires',
  async read(ctx, sinceMs) {
    const fires = await ctx.registry.schedules.problemsSince(new Date(sinceMs));
    const events: NotificationEvent[] = [];
    const missed = new Map<string, (Fire & { settledAt: string })[]>();
    for (const f of fires) {
      if (f.outcome === 'failed') {
        events.push(
          makeEvent('schedule.failed', [f.id], f.settledAt, `:warning: schedule ${f.schedule}: the fire of ${f.scheduledFor} failed: ${plain(f.reason)}`, {
            schedule: f.schedule,
            scheduledFor: f.scheduledFor,
            manual: f.manual,
            reason: f.reason,
          }),
        );
        continue;
      }
      const batch = `${f.schedule}\n${f.createdAt}`;
      missed.set(batch, [...(missed.get(batch) ?? []), f]);
    }
    for (const group of missed.values()) {
      const times = group.map((f) => f.scheduledFor).sort();
      const first = times[0]!;
      const last = times[times.length - 1]!;
      const { schedule, reason, settledAt } = group[0]!;
      const span = times.length === 1 ? `the fire of ${first}` : `${times.length} fires from ${first} to ${last}`;
      events.push(
        makeEvent('schedule.missed', [schedule, Date.parse(first)], settledAt, `:hourglass: schedule ${schedule} missed ${span}: ${plain(reason)}`, {
          schedule,
          missed: times,
          reason,
        }),
      );
    }
    return events;
  },
};
