// A market-data sync of one (symbol, timeframe), under the fenced lock:
// - the lock is taken without waiting; when another sync of the key holds it, this one is
//   skipped (completed with `skipped: true` and the holder's job id), since that sync is
//   producing the same data right now;
// - the sync command runs as a child; if the lock is lost (a renewal fails, or none succeeds
//   within the TTL because Redis does not answer) the child is ended;
// - the sync is recorded in Postgres with the lock's fencing token, refused in the same
//   statement if a newer token has been granted for the key or has written it: then the job
//   fails with `stale lock`;
// - a finished sync publishes a `data_updates` event on Redis.
import { UnrecoverableError } from 'bullmq';
import type { PayloadOf } from '../../queues/payloads.js';
import { dataUpdatesChannel, syncLockKey } from '../../queues/redis-names.js';
import type { Processor } from '../job-context.js';

export const dataSync: Processor = async (ctx) => {
  const p = ctx.job.data.payload as PayloadOf<'data-sync'>;
  const cfg = ctx.fleet.dataSync;
  // From now on a new request for this key is enqueued (not deduplicated) and finds the lock.
  await ctx.job.removeDeduplicationKey().catch(() => undefined);
  const key = syncLockKey(p.symbol, p.timeframe);
  const lockOpts = { ttlMs: cfg.lockTtlSeconds * 1000, maxHoldMs: cfg.maxLockHoldSeconds * 1000, holder: ctx.job.id! };
  // A sync a retrain waits for (a flow child) must not skip: it waits for the holder, then syncs,
  // so the retrain never starts before its data is in.
  const lock = ctx.job.parent
    ? await ctx.locks.acquire(key, lockOpts, cfg.timeoutSeconds * 1000)
    : await ctx.locks.tryAcquire(key, lockOpts);
  if (!lock) {
    const holder = await ctx.locks.holder(key);
    ctx.log.info({ key, holder: holder?.holder }, 'skipped: the key is being synced');
    return {
      skipped: true,
      reason: `${p.symbol} ${p.timeframe} is being synced by ${holder?.holder ?? 'another job'}`,
      holderJobId: holder?.holder ?? null,
      symbol: p.symbol,
      timeframe: p.timeframe,
    };
  }
  try {
    const { events } = await ctx.run(cfg, { CAELUM_LOCK_FENCE: String(lock.fence) }, lock.signal);
    const result = [...events].reverse().find((e) => e.event === 'result') ?? { event: 'result' };
    const rows = Number((result.metrics as Record<string, unknown> | undefined)?.rows ?? 0);
    const range = { from: (result.from as string | undefined) ?? p.window?.from ?? null, to: (result.to as string | undefined) ?? p.window?.to ?? null };
    // The child may have outlived a lost lock by a moment; the fence decides.
    const { written, newestFence } = await ctx.registry.marketData.recordSync({
      symbol: p.symbol,
      timeframe: p.timeframe,
      fence: lock.fence,
      jobId: ctx.job.id!,
      source: p.source,
      rows,
      from: range.from,
      to: range.to,
    });
    if (!written) {
      ctx.metrics.fenceRefusals.inc();
      throw new UnrecoverableError(
        `stale lock: fence ${lock.fence} is older than fence ${newestFence}, granted since for ${p.symbol} ${p.timeframe}; nothing was changed`,
      );
    }
    const update = { symbol: p.symbol, timeframe: p.timeframe, rows, from: range.from, to: range.to, jobId: ctx.job.id, fence: lock.fence };
    await ctx.redis.publish(dataUpdatesChannel(ctx.prefix), JSON.stringify(update));
    return { skipped: false, ...update, host: ctx.hostId };
  } finally {
    await lock.release().catch(() => undefined);
  }
};
