// One subscription per worker process to the cancel channel; each message names a job id, and
// whichever host worker of this process runs that job ends it.
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import { cancelChannel } from '../queues/redis-names.js';

export class CancelListener {
  private closing: Promise<void> | undefined;

  private constructor(private readonly subscriber: Redis) {}

  static async start(subscriber: Redis, prefix: string, onCancel: (jobId: string) => void, logger: Logger): Promise<CancelListener> {
    subscriber.on('message', (_channel: string, jobId: string) => {
      try {
        onCancel(jobId);
      } catch (err) {
        logger.error({ err, jobId }, 'cancel handler failed');
      }
    });
    await subscriber.subscribe(cancelChannel(prefix));
    return new CancelListener(subscriber);
  }

  close(): Promise<void> {
    // The connection is the composition root's to close; this only stops listening (and does
    // not wait on a Redis that is away: closing the connection ends the subscription anyway).
    this.closing ??=
      this.subscriber.status === 'ready' ? this.subscriber.unsubscribe().then(() => undefined, () => undefined) : Promise.resolve();
    return this.closing;
  }
}
