// A worker process holds one subscriber connection for every channel it listens on (cancel
// requests, drain changes); each listener hears only the messages of its own channel.
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';

export class ChannelListener {
  private closing: Promise<void> | undefined;

  private constructor(
    private readonly subscriber: Redis,
    private readonly channel: string,
    private readonly onMessage: (channel: string, message: string) => void,
  ) {}

  static async start(subscriber: Redis, channel: string, handle: (message: string) => void, logger: Logger): Promise<ChannelListener> {
    const onMessage = (from: string, message: string) => {
      if (from !== channel) return;
      try {
        handle(message);
      } catch (err) {
        logger.error({ err, channel, message }, 'channel message handler failed');
      }
    };
    subscriber.on('message', onMessage);
    await subscriber.subscribe(channel);
    return new ChannelListener(subscriber, channel, onMessage);
  }

  close(): Promise<void> {
    // The connection is the composition root's to close; this only stops listening (and does
    // not wait on a Redis that is away: closing the connection ends the subscription anyway).
    this.closing ??= (async () => {
      this.subscriber.off('message', this.onMessage);
      if (this.subscriber.status === 'ready') await this.subscriber.unsubscribe(this.channel).catch(() => {});
    })();
    return this.closing;
  }
}
