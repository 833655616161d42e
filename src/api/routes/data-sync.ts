// GET /api/data-sync: every market-data key with its last sync, its age, the fencing token that
// wrote it, who holds its lock now, and whether it is stale. A key is stale when a model that
// trains on it asks for fresher data (`freshData.maxAgeHours` at that timeframe) than its last
// sync, or has never been synced; the keys those models need are listed even before their first
// sync. A key no model asks freshness of is never stale.
import type { FastifyInstance } from 'fastify';
import type { LoadedFleet } from '../../config/load-fleet.js';
import type { FencedLock } from '../../locks/fenced-lock.js';
import type { Registry } from '../../registry/index.js';
import { SYNC_LOCK_PREFIX, syncLockKey } from '../../queues/redis-names.js';

/** Per lock key, the strictest age (hours) a model training on it allows. */
export function freshnessRules(fleet: LoadedFleet): Map<string, { symbol: string; timeframe: string; maxAgeHours: number }> {
  const rules = new Map<string, { symbol: string; timeframe: string; maxAgeHours: number }>();
  for (const model of Object.values(fleet.models)) {
    if (!model.freshData) continue;
    const { timeframe, maxAgeHours } = model.freshData;
    for (const symbol of model.symbols) {
      const key = syncLockKey(symbol, timeframe);
      const known = rules.get(key);
      if (!known || maxAgeHours < known.maxAgeHours) rules.set(key, { symbol, timeframe, maxAgeHours });
    }
  }
  return rules;
}

export async function dataSyncRoutes(app: FastifyInstance, deps: { fleet: LoadedFleet; registry: Registry; locks: FencedLock }): Promise<void> {
  const rules = freshnessRules(deps.fleet);
  app.get('/api/data-sync', { config: { access: 'read' } }, async () => {
    const [syncs, held] = await Promise.all([deps.registry.marketData.list(), deps.locks.held(SYNC_LOCK_PREFIX)]);
    const now = Date.now();
    const keys = new Map<string, { symbol: string; timeframe: string }>();
    for (const s of syncs) keys.set(syncLockKey(s.symbol, s.timeframe), s);
    // A key being synced for the first time has no sync yet, only a holder.
    for (const key of held.keys()) {
      const [, symbol = '', timeframe = ''] = key.split(':');
      if (!keys.has(key)) keys.set(key, { symbol, timeframe });
    }
    for (const [key, rule] of rules) if (!keys.has(key)) keys.set(key, rule);
    return {
      keys: [...keys.entries()]
        .map(([key, { symbol, timeframe }]) => {
          const last = syncs.find((s) => s.symbol === symbol && s.timeframe === timeframe);
          const holder = held.get(key);
          const ageSeconds = last ? Math.max(0, Math.round((now - Date.parse(last.syncedAt)) / 1000)) : null;
          const maxAgeHours = rules.get(key)?.maxAgeHours ?? null;
          return {
            symbol,
            timeframe,
            lastSync: last ? { at: last.syncedAt, jobId: last.jobId, rows: last.rows, from: last.from, to: last.to, source: last.source } : null,
            ageSeconds,
            maxAgeHours,
            stale: maxAgeHours !== null && (ageSeconds === null || ageSeconds > maxAgeHours * 3600),
            fence: last?.fence ?? null,
            holder: holder ? { jobId: holder.holder, fence: holder.fence, since: holder.since } : null,
            state: holder ? 'syncing' : 'idle',
          };
        })
        .sort((a, b) => a.symbol.localeCompare(b.symbol) || a.timeframe.localeCompare(b.timeframe)),
    };
  });
}
