// The enqueue side of notifications: each event becomes one delivery job per target that wants
// it, in the `notifications` queue, under a job id made of the target and the event's id. BullMQ
// adds nothing for an id it already holds (waiting, retrying or done), so the same event noticed
// by two notifiers, or read twice by one, is delivered once. That holds for as long as the queue
// keeps the finished job: a week, far longer than any source reads back.
import { Queue, type JobsOptions } from 'bullmq';
import type { Redis } from 'ioredis';
import { eventsOf, type NotificationsConfig } from '../config/notifications-schema.js';
import type { Logger } from '../logger.js';
import { NOTIFICATIONS_QUEUE } from '../queues/redis-names.js';
import type { NotificationEvent } from './events.js';

const DAY_S = 24 * 3600;
/** How long a finished delivery is kept, which is how long its event cannot be delivered again. */
export const DELIVERY_KEPT_SECONDS = 7 * DAY_S;

export interface DeliveryData {
  target: string;
  event: NotificationEvent;
}

/** BullMQ job ids may not contain ':'; event ids do, so they are spelled with '~' here. */
export const deliveryJobId = (target: string, eventId: string) => `${target}~${eventId.replaceAll(':', '~')}`;

export function deliveryJobOptions(config: NotificationsConfig): JobsOptions {
  return {
    attempts: config.attempts,
    backoff: { type: 'exponential', delay: config.backoffSeconds * 1000 },
    removeOnComplete: { age: DELIVERY_KEPT_SECONDS, count: 50_000 },
    removeOnFail: { age: 4 * DELIVERY_KEPT_SECONDS, count: 50_000 },
  };
}

export class NotificationOutbox {
  readonly queue: Queue<DeliveryData>;
  private readonly wants: [string, Set<string>][];
  private closing: Promise<void> | undefined;

  constructor(
    private readonly config: NotificationsConfig,
    connection: Redis,
    prefix: string,
    logger: Logger,
  ) {
    this.queue = new Queue<DeliveryData>(NOTIFICATIONS_QUEUE, { connection, prefix, defaultJobOptions: deliveryJobOptions(config) });
    this.queue.on('error', (err) => logger.warn({ err, queue: NOTIFICATIONS_QUEUE }, 'queue error'));
    this.wants = Object.entries(config.targets).map(([name, t]) => [name, eventsOf(t)]);
  }

  /** Enqueues a delivery of each event to each target that wants it; ids it holds already add nothing. */
  async publish(events: readonly NotificationEvent[]): Promise<void> {
    const jobs = events.flatMap((event) =>
      this.wants
        .filter(([, wanted]) => wanted.has(event.event))
        .map(([target]) => ({ name: event.event, data: { target, event }, opts: { ...deliveryJobOptions(this.config), jobId: deliveryJobId(target, event.id) } })),
    );
    if (jobs.length) await this.queue.addBulk(jobs);
  }

  close(): Promise<void> {
    this.closing ??= this.queue.close();
    return this.closing;
  }
}
