// data.stale: a symbol of a model with `freshData` whose last sync at that timeframe is older
// than the model allows, or that was never synced. A condition, not an event: the id carries the
// sync it is stale since, so it is told once per sync that went stale (and again after the
// delivery record expires, a week later, if nobody synced it meanwhile).
import { makeEvent, type NotificationEvent } from '../events.js';
import type { NotificationSource } from './source.js';

const HOUR_MS = 3600_000;

export const staleData: NotificationSource = {
  name: 'stale-data',
  async read(ctx, _sinceMs, nowMs) {
    const events: NotificationEvent[] = [];
    for (const [model, m] of Object.entries(ctx.fleet.models)) {
      if (!m.freshData || m.symbols.length === 0) continue;
      const { timeframe, maxAgeHours } = m.freshData;
      const synced = new Map((await ctx.registry.marketData.latest(m.symbols, timeframe)).map((r) => [r.symbol, Date.parse(r.syncedAt)]));
      for (const symbol of m.symbols) {
        const at = synced.get(symbol);
        if (at !== undefined && nowMs - at <= maxAgeHours * HOUR_MS) continue;
        const age = at === undefined ? 'has never been synced' : `was last synced ${((nowMs - at) / HOUR_MS).toFixed(1)} h ago (${new Date(at).toISOString()})`;
        events.push(
          makeEvent('data.stale', [model, symbol, timeframe, at ?? 'never'], at === undefined ? nowMs : at + maxAgeHours * HOUR_MS, `:snail: ${symbol} ${timeframe} ${age}; ${model} wants it at most ${maxAgeHours} h old`, {
            model,
            symbol,
            timeframe,
            lastSyncedAt: at === undefined ? null : new Date(at).toISOString(),
            maxAgeHours,
          }),
        );
      }
    }
    return events;
  },
};
