// The notifier's loop: every period, each source is read from its cursor (less an overlap, for
// records that commit late or carry another machine's clock), what it finds is enqueued, and only
// then is the cursor moved. The cursor is in Redis and shared, so a notifier started after a
// pause catches up (at most a day back) and a second notifier reads from where the first got to;
// whatever two reads both find has the same id and is delivered once (outbox.ts).
import type { Redis } from 'ioredis';
import { toError } from '../errors.js';
import type { Logger } from '../logger.js';
import { notificationCursorKey } from '../queues/redis-names.js';
import type { NotificationEvent } from './events.js';
import type { NotificationSource, SourceContext } from './sources/source.js';

/** Read back this far before the cursor: longer than a transaction lasts or clocks drift apart. */
export const OVERLAP_MS = 120_000;
/** A cursor older than this (the notifier was off for days) is moved up to it: old news is not told. */
export const MAX_CATCH_UP_MS = 24 * 3600_000;

// Moves the cursor forward only: a notifier that read less far does not pull it back.
const ADVANCE = `local c = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > c then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

export interface WatchOptions {
  sources: readonly NotificationSource[];
  context: Omit<SourceContext, 'known'>;
  publish(events: readonly NotificationEvent[]): Promise<void>;
  periodMs: number;
  logger: Logger;
  now?: () => number;
}

export class NotificationWatch {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private closing: Promise<void> | undefined;
  /** Event ids this process enqueued, until they fall out of every read window. */
  private readonly sent = new Map<string, number>();
  private readonly failing = new Set<string>();
  private readonly log: Logger;
  private readonly now: () => number;

  constructor(private readonly opts: WatchOptions) {
    this.log = opts.logger.child({ component: 'notifications' });
    this.now = opts.now ?? Date.now;
  }

  start(): void {
    this.schedule(0);
  }

  /** One pass over every source; resolves when what they found is enqueued. */
  async pass(): Promise<void> {
    const redis: Redis = this.opts.context.redis;
    const context: SourceContext = { ...this.opts.context, known: (id) => this.sent.has(id) };
    for (const source of this.opts.sources) {
      const now = this.now();
      try {
        const key = notificationCursorKey(context.prefix, source.name);
        const stored = Number((await redis.get(key)) ?? now);
        const since = Math.max(stored, now - MAX_CATCH_UP_MS) - OVERLAP_MS;
        const events = (await source.read(context, since, now)).filter((e) => !this.sent.has(e.id));
        if (events.length) await this.opts.publish(events);
        for (const e of events) this.sent.set(e.id, now);
        await redis.eval(ADVANCE, 1, key, String(now));
        if (this.failing.delete(source.name)) this.log.info({ source: source.name }, 'notification source readable again');
      } catch (err) {
        // Said once per outage, not every period; the cursor stays, so nothing is skipped.
        if (!this.failing.has(source.name)) this.log.warn({ err: toError(err), source: source.name }, 'could not read a notification source; trying again');
        this.failing.add(source.name);
      }
    }
    const forgetBefore = this.now() - MAX_CATCH_UP_MS - 2 * OVERLAP_MS;
    for (const [id, at] of this.sent) if (at < forgetBefore) this.sent.delete(id);
  }

  private schedule(delayMs: number): void {
    if (this.closing) return;
    this.timer = setTimeout(() => {
      this.running = this.pass().finally(() => {
        this.running = undefined;
        this.schedule(this.opts.periodMs);
      });
    }, delayMs);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      clearTimeout(this.timer);
      await this.running;
    })();
    return this.closing;
  }
}
