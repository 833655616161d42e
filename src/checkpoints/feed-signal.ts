// The wake-up of the FinColl feed. After a validation commits, the worker publishes on Redis; each
// API process holds one subscription and wakes its waiting feed requests. Redis rather than
// NOTIFY so that every API process is reached, and so that the embedded PGlite database (where
// NOTIFY never crosses connections) works the same. The cursor makes the feed correct; this
// only makes it fast.
import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import { feedChannel } from '../queues/redis-names.js';

export async function publishFeed(redis: Redis, prefix: string, model: string, seq: number): Promise<void> {
  await redis.publish(feedChannel(prefix), JSON.stringify({ model, seq }));
}

export class FeedSignal {
  private readonly emitter = new EventEmitter();
  private closing: Promise<void> | undefined;

  private constructor(private readonly subscriber: Redis) {
    this.emitter.setMaxListeners(0);
  }

  static async start(subscriber: Redis, prefix: string): Promise<FeedSignal> {
    const signal = new FeedSignal(subscriber);
    const channel = feedChannel(prefix);
    subscriber.on('message', (from: string, message: string) => {
      if (from !== channel) return;
      try {
        const { model, seq } = JSON.parse(message) as { model: string; seq?: number };
        signal.emitter.emit('validated', model);
        if (typeof seq === 'number') signal.emitter.emit('seq', model, seq);
      } catch {
        // not ours
      }
    });
    // A subscription that dropped and came back may have missed messages: say so, so what keeps
    // state from them (feed-index.ts) reads it again.
    let connected = false;
    subscriber.on('ready', () => {
      if (connected) signal.emitter.emit('resync');
      connected = true;
    });
    await subscriber.subscribe(channel);
    connected = true;
    return signal;
  }

  /** Calls `listener` with each validation's model and feed sequence; returns the way to stop. */
  onSeq(listener: (model: string, seq: number) => void): () => void {
    this.emitter.on('seq', listener);
    return () => this.emitter.off('seq', listener);
  }

  /** Calls `listener` after the subscription came back from a disconnect; returns the way to stop. */
  onResync(listener: () => void): () => void {
    this.emitter.on('resync', listener);
    return () => this.emitter.off('resync', listener);
  }

  /** Requests waiting right now (for metrics). */
  get waiting(): number {
    return this.emitter.listenerCount('validated');
  }

  /** Resolves when a checkpoint of `model` (any model when undefined) is validated, or after ms. */
  wait(model: string | undefined, ms: number, abort?: AbortSignal): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (value: boolean) => {
        clearTimeout(timer);
        this.emitter.off('validated', onValidated);
        abort?.removeEventListener('abort', onAbort);
        resolve(value);
      };
      const onValidated = (m: string) => {
        if (!model || m === model) done(true);
      };
      const onAbort = () => done(false);
      const timer = setTimeout(() => done(false), ms);
      this.emitter.on('validated', onValidated);
      abort?.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): Promise<void> {
    // The connection is the composition root's to close; this only stops listening (and does
    // not wait on a Redis that is away: closing the connection ends the subscription anyway).
    this.closing ??=
      this.subscriber.status === 'ready' ? this.subscriber.unsubscribe().then(() => undefined, () => undefined) : Promise.resolve();
    return this.closing;
  }
}
