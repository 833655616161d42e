// A lock on a single Redis, with a fencing token.
//
// - A random token per holder; `SET NX PX` grants, a Lua compare-and-delete releases (only the
//   holder can), a Lua compare-and-pexpire renews.
// - Renewal runs from a timer in the holder's process, every third of the TTL. The protected work
//   runs in a child process, so it cannot block the timer. `signal` aborts at once when a renewal
//   fails (the key expired or someone else holds it), when the holder has renewed for `maxHoldMs`,
//   and when no renewal has succeeded within the TTL, even if Redis never answers (its commands
//   hang behind a partition): the holder's clock is monotonic and counts from when the last
//   successful renewal was sent, so it gives up no later than Redis lets the key expire.
// - The fencing token comes from a Postgres sequence, so it keeps increasing even if Redis loses
//   its data. It is drawn before the grant, and Redis keeps the newest token granted per key: a
//   grant with an older token than one already granted is refused and retried with a new one.
//   Once granted, the holder records its token in Postgres as the newest granted for the key
//   before it may write (FenceSource.recordGrant); the guarded write (market-data.ts) refuses any
//   older token, so a holder that lost the lock is refused whatever the timing.
// - Waiting is by blocking: a release pushes to a per-key list that waiters BLPOP, bounded by
//   the time left and the key's remaining TTL. Nothing polls.
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { Metrics } from '../metrics.js';
import { lockKeyPrefix } from '../queues/redis-names.js';

const ACQUIRE = `
local newest = tonumber(redis.call('GET', KEYS[3]) or '0')
if tonumber(ARGV[3]) < newest then return -1 end
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SET', KEYS[3], ARGV[3])
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'token', ARGV[1], 'fence', ARGV[3], 'holder', ARGV[4], 'since', ARGV[5])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0`;

const RENEW = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return 1
end
return 0`;

const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1], KEYS[2])
  redis.call('DEL', KEYS[3])
  redis.call('LPUSH', KEYS[3], '1')
  redis.call('PEXPIRE', KEYS[3], 5000)
  return 1
end
return 0`;

export interface FenceSource {
  /** A token newer than every one drawn before. */
  nextFence(): Promise<number>;
  /** Records `fence` as granted for `key`; answers the newest fence granted for `key`. */
  recordGrant(key: string, fence: number): Promise<number>;
}

/** Where the lock reads the time: a monotonic clock for its deadlines, the wall clock for display. */
export interface LockClock {
  monotonicMs(): number;
  now(): Date;
}

export const systemLockClock: LockClock = { monotonicMs: () => performance.now(), now: () => new Date() };

export interface LockOptions {
  ttlMs: number;
  /** Longest a holder may keep renewing; then its signal aborts. */
  maxHoldMs: number;
  /** Who holds it (a job id), shown to those who find it taken. */
  holder: string;
}

export interface HolderInfo {
  holder: string;
  fence: number;
  since: string;
}

export class LockLostError extends Error {
  override name = 'LockLostError';
}

export class LockHandle {
  private readonly controller = new AbortController();
  private readonly renewTimer: NodeJS.Timeout;
  private expiryTimer: NodeJS.Timeout | undefined;
  private renewing = false;
  private released = false;
  private readonly grantedAt: number;
  /** Monotonic time at which the newest successful renewal (or the grant) was sent. */
  private renewedAt: number;

  constructor(
    private readonly lock: FencedLock,
    readonly key: string,
    readonly token: string,
    readonly fence: number,
    private readonly opts: LockOptions,
    private readonly clock: LockClock,
    /** When the grant command was sent: the key lives at least the TTL from then. */
    sentAt: number,
  ) {
    this.grantedAt = sentAt;
    this.renewedAt = sentAt;
    this.renewTimer = setInterval(() => this.renew(), Math.max(50, Math.floor(opts.ttlMs / 3)));
    this.watchExpiry();
  }

  private renew(): void {
    const sentAt = this.clock.monotonicMs();
    if (sentAt - this.grantedAt >= this.opts.maxHoldMs) {
      this.lose(`held for longer than the ${this.opts.maxHoldMs} ms cap`);
      return;
    }
    // A renewal still unanswered may never be; the expiry watch gives up on it in time.
    if (this.renewing) return;
    this.renewing = true;
    this.lock
      .renew(this)
      .then(
        (ok) => {
          if (this.released) return;
          if (!ok) return this.lose('renewal failed: the lock expired or another holder has it');
          this.renewedAt = Math.max(this.renewedAt, sentAt);
          this.watchExpiry();
        },
        (err: unknown) => {
          if (!this.released) this.lose(`renewal failed: ${err instanceof Error ? err.message : String(err)}`);
        },
      )
      .finally(() => {
        this.renewing = false;
      });
  }

  /** Aborts when the TTL has passed since the newest successful renewal was sent. */
  private watchExpiry(): void {
    clearTimeout(this.expiryTimer);
    if (this.controller.signal.aborted) return;
    const left = this.renewedAt + this.opts.ttlMs - this.clock.monotonicMs();
    if (left <= 0) {
      this.lose(`no renewal succeeded within the ${this.opts.ttlMs} ms TTL`);
      return;
    }
    this.expiryTimer = setTimeout(() => this.watchExpiry(), Math.ceil(left));
  }

  /** Aborts when the lock is lost: stop the protected work at once. */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  get ttlMs(): number {
    return this.opts.ttlMs;
  }

  private lose(reason: string): void {
    this.stopTimers();
    if (!this.controller.signal.aborted) this.controller.abort(new LockLostError(`lock ${this.key} lost: ${reason}`));
  }

  /** Releases the lock if this handle still holds it; true when it did. */
  async release(): Promise<boolean> {
    this.stopTimers();
    if (this.released) return false;
    this.released = true;
    return this.lock.releaseToken(this.key, this.token);
  }

  private stopTimers(): void {
    clearInterval(this.renewTimer);
    clearTimeout(this.expiryTimer);
  }
}

export class FencedLock {
  constructor(
    private readonly redis: Redis,
    private readonly fences: FenceSource,
    private readonly prefix: string,
    private readonly metrics?: Pick<Metrics, 'lockGrants' | 'lockWaits' | 'lockWaitSeconds'>,
    private readonly clock: LockClock = systemLockClock,
  ) {}

  private keys(key: string) {
    const base = `${lockKeyPrefix(this.prefix)}${key}`;
    return { lock: base, info: `${base}:holder`, newest: `${base}:fence`, released: `${base}:released` };
  }

  /** Takes the lock if it is free now; undefined when someone holds it. */
  async tryAcquire(key: string, opts: LockOptions): Promise<LockHandle | undefined> {
    const k = this.keys(key);
    for (let attempt = 0; attempt < 5; attempt++) {
      const fence = await this.fences.nextFence();
      const token = randomBytes(16).toString('hex');
      const sentAt = this.clock.monotonicMs();
      const granted = (await this.redis.eval(
        ACQUIRE,
        3,
        k.lock,
        k.info,
        k.newest,
        token,
        String(opts.ttlMs),
        String(fence),
        opts.holder,
        this.clock.now().toISOString(),
      )) as number;
      if (granted === 1) {
        const newest = await this.fences.recordGrant(key, fence).catch(async (err: unknown) => {
          await this.releaseToken(key, token).catch(() => undefined);
          throw err;
        });
        if (newest > fence) {
          // Redis lost the newest token (flushed, restarted empty) and granted an older one than
          // Postgres has seen granted: every write under it would be refused. Draw again.
          await this.releaseToken(key, token);
          continue;
        }
        this.metrics?.lockGrants.inc();
        return new LockHandle(this, key, token, fence, opts, this.clock, sentAt);
      }
      if (granted === 0) {
        this.metrics?.lockWaits.inc();
        return undefined;
      }
      // -1: a newer token was granted meanwhile; draw another.
    }
    return undefined;
  }

  /** Waits up to `waitMs` for the lock, blocking on its release signal; undefined on time-out. */
  async acquire(key: string, opts: LockOptions, waitMs: number): Promise<LockHandle | undefined> {
    const started = this.clock.monotonicMs();
    const deadline = started + waitMs;
    let waiter: Redis | undefined;
    try {
      for (;;) {
        const handle = await this.tryAcquire(key, opts);
        if (handle) {
          this.metrics?.lockWaitSeconds.observe((this.clock.monotonicMs() - started) / 1000);
          return handle;
        }
        const left = deadline - this.clock.monotonicMs();
        if (left <= 0) return undefined;
        const k = this.keys(key);
        const ttl = await this.redis.pttl(k.lock);
        // Wake on release, or when the holder's TTL runs out, whichever is first.
        const blockMs = Math.max(10, Math.min(left, ttl > 0 ? ttl + 5 : left));
        waiter ??= this.redis.duplicate();
        await waiter.blpop(k.released, blockMs / 1000);
      }
    } finally {
      waiter?.disconnect();
    }
  }

  async renew(handle: LockHandle): Promise<boolean> {
    const k = this.keys(handle.key);
    return ((await this.redis.eval(RENEW, 2, k.lock, k.info, handle.token, String(handle.ttlMs))) as number) === 1;
  }

  async releaseToken(key: string, token: string): Promise<boolean> {
    const k = this.keys(key);
    return ((await this.redis.eval(RELEASE, 3, k.lock, k.info, k.released, token)) as number) === 1;
  }

  /** Held keys that start with `keyPrefix`, with their holders (an admin view: SCAN, not a hot path). */
  async held(keyPrefix: string): Promise<Map<string, HolderInfo>> {
    const base = lockKeyPrefix(this.prefix);
    const found = new Map<string, HolderInfo>();
    let cursor = '0';
    do {
      const [next, keys] = await this.redis.scan(cursor, 'MATCH', `${base}${keyPrefix}*:holder`, 'COUNT', 500);
      cursor = next;
      for (const k of keys) {
        const key = k.slice(base.length, -':holder'.length);
        const info = await this.holder(key);
        if (info) found.set(key, info);
      }
    } while (cursor !== '0');
    return found;
  }

  /** Who holds the lock now; undefined when nobody does (a lost holder's leftovers do not count). */
  async holder(key: string): Promise<HolderInfo | undefined> {
    const k = this.keys(key);
    const [token, info] = await Promise.all([this.redis.get(k.lock), this.redis.hgetall(k.info)]);
    if (!token || info.token !== token || !info.holder) return undefined;
    return { holder: info.holder, fence: Number(info.fence), since: info.since ?? '' };
  }
}
