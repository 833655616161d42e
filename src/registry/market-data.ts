// The record of market-data syncs, and the fences of the lock they are written under. A write
// carries the fencing token of its lock and is refused in the same statement when a newer token
// has been granted for that key (recorded by the lock at every grant) or has written it: a holder
// that lost its lock, however it lost it and whenever it comes back, cannot overwrite the sync of
// the one that followed.
import type pg from 'pg';
import { syncLockKey } from '../queues/redis-names.js';

export interface SyncWrite {
  symbol: string;
  timeframe: string;
  fence: number;
  jobId: string;
  source: string;
  rows: number;
  from: string | null;
  to: string | null;
}

export interface SyncRecord extends SyncWrite {
  syncedAt: string;
}

export function createMarketDataRepository(pool: pg.Pool) {
  return {
    /** The next fencing token: a Postgres sequence, so it never goes backwards. */
    async nextFence(): Promise<number> {
      const { rows } = await pool.query<{ fence: string }>("select nextval('lock_fence_seq') as fence");
      return Number(rows[0]!.fence);
    },

    /**
     * Records that `fence` was granted for the lock `key`, before its holder may write; answers the
     * newest fence granted for the key (greater than `fence` only if an older fence was granted
     * after a newer one, as after Redis lost its data: the lock then draws again).
     */
    async recordGrant(key: string, fence: number): Promise<number> {
      const { rows } = await pool.query<{ newest_fence: string }>(
        `insert into lock_fences (lock_key, newest_fence) values ($1, $2)
         on conflict (lock_key) do update
           set newest_fence = greatest(lock_fences.newest_fence, excluded.newest_fence),
               granted_at = case when excluded.newest_fence > lock_fences.newest_fence then now() else lock_fences.granted_at end
         returning newest_fence`,
        [key, fence],
      );
      return Number(rows[0]!.newest_fence);
    },

    /**
     * Writes the sync unless a newer fence has been granted for the key or has written it; false
     * when refused, with the newest fence known for the key.
     */
    async recordSync(w: SyncWrite): Promise<{ written: boolean; newestFence: number }> {
      const { rows } = await pool.query<{ written: boolean; fence: string }>(
        // `for share` waits for a grant being recorded right now, and then reads it.
        `with granted as (
           select coalesce((select newest_fence from lock_fences where lock_key = $9 for share), 0) as fence
         ), attempt as (
           insert into market_data_syncs (symbol, timeframe, fence, job_id, source, rows, range_from, range_to)
           select $1, $2, $3, $4, $5, $6, $7, $8 where $3 >= (select fence from granted)
           on conflict (symbol, timeframe) do update
             set fence = excluded.fence, job_id = excluded.job_id, source = excluded.source, rows = excluded.rows,
                 range_from = excluded.range_from, range_to = excluded.range_to, synced_at = now()
             where market_data_syncs.fence < excluded.fence
           returning fence
         ), logged as (
           insert into market_data_sync_log (symbol, timeframe, fence, job_id, outcome, rows, range_from, range_to)
           select $1, $2, $3, $4, case when exists (select 1 from attempt) then 'written' else 'refused' end, $6, $7, $8
         )
         select exists (select 1 from attempt) as written,
                coalesce((select fence from attempt),
                         greatest((select fence from granted), (select fence from market_data_syncs where symbol = $1 and timeframe = $2))) as fence`,
        [w.symbol, w.timeframe, w.fence, w.jobId, w.source, w.rows, w.from, w.to, syncLockKey(w.symbol, w.timeframe)],
      );
      return { written: rows[0]!.written, newestFence: Number(rows[0]!.fence) };
    },

    async list(): Promise<SyncRecord[]> {
      const { rows } = await pool.query(
        'select symbol, timeframe, fence, job_id, source, rows, range_from, range_to, synced_at from market_data_syncs order by symbol, timeframe',
      );
      return rows.map(toRecord);
    },

    /** The newest sync of each of these symbols at a timeframe. */
    async latest(symbols: string[], timeframe: string): Promise<SyncRecord[]> {
      const { rows } = await pool.query(
        `select symbol, timeframe, fence, job_id, source, rows, range_from, range_to, synced_at
         from market_data_syncs where timeframe = $2 and symbol = any($1::text[]) order by symbol`,
        [symbols, timeframe],
      );
      return rows.map(toRecord);
    },
  };
}

function toRecord(r: Record<string, unknown>): SyncRecord {
  return {
    symbol: r.symbol as string,
    timeframe: r.timeframe as string,
    fence: Number(r.fence),
    jobId: r.job_id as string,
    source: r.source as string,
    rows: r.rows as number,
    from: r.range_from ? (r.range_from as Date).toISOString() : null,
    to: r.range_to ? (r.range_to as Date).toISOString() : null,
    syncedAt: (r.synced_at as Date).toISOString(),
  };
}

export type MarketDataRepository = ReturnType<typeof createMarketDataRepository>;
