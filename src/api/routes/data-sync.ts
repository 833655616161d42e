// GET /api/data-sync: every market-data key with its last sync, the fencing token that wrote it,
// and who holds its lock now.
import type { FastifyInstance } from 'fastify';
import type { FencedLock } from '../../locks/fenced-lock.js';
import type { Registry } from '../../registry/index.js';
import { SYNC_LOCK_PREFIX, syncLockKey } from '../../queues/redis-names.js';

export async function dataSyncRoutes(app: FastifyInstance, deps: { registry: Registry; locks: FencedLock }): Promise<void> {
  app.get('/api/data-sync', { config: { access: 'read' } }, async () => {
    const [syncs, held] = await Promise.all([deps.registry.marketData.list(), deps.locks.held(SYNC_LOCK_PREFIX)]);
    const keys = new Map<string, { symbol: string; timeframe: string }>();
    for (const s of syncs) keys.set(syncLockKey(s.symbol, s.timeframe), s);
    // A key being synced for the first time has no sync yet, only a holder.
    for (const key of held.keys()) {
      const [, symbol = '', timeframe = ''] = key.split(':');
      if (!keys.has(key)) keys.set(key, { symbol, timeframe });
    }
    return {
      keys: [...keys.entries()]
        .map(([key, { symbol, timeframe }]) => {
          const last = syncs.find((s) => s.symbol === symbol && s.timeframe === timeframe);
          const holder = held.get(key);
          return {
            symbol,
            timeframe,
            lastSync: last ? { at: last.syncedAt, jobId: last.jobId, rows: last.rows, from: last.from, to: last.to, source: last.source } : null,
            fence: last?.fence ?? null,
            holder: holder ? { jobId: holder.holder, fence: holder.fence, since: holder.since } : null,
            state: holder ? 'syncing' : 'idle',
          };
        })
        .sort((a, b) => a.symbol.localeCompare(b.symbol) || a.timeframe.localeCompare(b.timeframe)),
    };
  });
}
