// The consuming side: a BullMQ Worker on the `notifications` queue POSTs each delivery to its
// target, signed (signature.ts), with the event's id as Idempotency-Key. A 2xx answer delivers
// it; a timeout, a network error, a 5xx, 408, 425 or 429 fails the attempt and BullMQ tries again
// with exponential backoff; any other 4xx (a revoked Slack URL, a receiver refusing our
// signature) would fail every time, so it fails for good at once.
import { UnrecoverableError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { NotificationsConfig } from '../config/notifications-schema.js';
import { toError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import { NOTIFICATIONS_QUEUE } from '../queues/redis-names.js';
import type { NotificationEvent } from './events.js';
import type { DeliveryData } from './outbox.js';
import { EVENT_HEADER, IDEMPOTENCY_HEADER, SIGNATURE_HEADER, signatureHeader } from './signature.js';

const RETRIED_4XX = new Set([408, 425, 429]);

export interface Delivery {
  url: string;
  secret: string;
  timeoutSeconds: number;
  event: NotificationEvent;
  attempt: number;
  userAgent: string;
}

/** One POST of one event; resolves on a 2xx, throws otherwise (UnrecoverableError when retrying cannot help). */
export async function deliver(d: Delivery, nowMs = Date.now()): Promise<void> {
  const body = JSON.stringify(d.event);
  let res: Response;
  try {
    res = await fetch(d.url, {
      method: 'POST',
      body,
      // A redirect is not followed: the signed body is meant for this URL only.
      redirect: 'manual',
      signal: AbortSignal.timeout(d.timeoutSeconds * 1000),
      headers: {
        'content-type': 'application/json',
        'user-agent': d.userAgent,
        [EVENT_HEADER]: d.event.event,
        [IDEMPOTENCY_HEADER]: d.event.id,
        [SIGNATURE_HEADER]: signatureHeader(d.secret, body, Math.floor(nowMs / 1000)),
        'x-caelum-delivery-attempt': String(d.attempt),
      },
    });
  } catch (err) {
    throw new Error(`POST failed: ${toError(err).message}`, { cause: err });
  }
  // Read to the end so the connection is reused; a receiver's answer says why it refused.
  const answer = (await res.text().catch(() => '')).slice(0, 200);
  if (res.ok) return;
  const message = `answered ${res.status}${answer ? `: ${answer}` : ''}`;
  if (res.status >= 400 && res.status < 500 && !RETRIED_4XX.has(res.status)) throw new UnrecoverableError(message);
  throw new Error(message);
}

export interface DeliveryWorkerOptions {
  config: NotificationsConfig;
  /** Each target's secret, resolved at the edge (resolveNotificationSecrets). */
  secrets: ReadonlyMap<string, string>;
  connection: Redis;
  prefix: string;
  metrics: Pick<Metrics, 'notifications'>;
  logger: Logger;
  version: string;
  concurrency?: number;
}

export class DeliveryWorker {
  private readonly worker: Worker<DeliveryData>;
  private closing: Promise<void> | undefined;

  constructor(private readonly opts: DeliveryWorkerOptions) {
    const log = opts.logger.child({ component: 'notifications' });
    // Series at 0 from the start, so an alert's increase() sees the first failure of a target.
    for (const target of Object.keys(opts.config.targets)) for (const outcome of ['delivered', 'retried', 'failed']) opts.metrics.notifications.inc({ target, outcome }, 0);
    this.worker = new Worker<DeliveryData>(NOTIFICATIONS_QUEUE, (job) => this.process(job), {
      connection: opts.connection,
      prefix: opts.prefix,
      concurrency: opts.concurrency ?? 4,
    });
    this.worker.on('error', (err) => log.warn({ err }, 'notification worker error'));
    this.worker.on('failed', (job, err) => {
      if (!job) return;
      const final = err instanceof UnrecoverableError || job.attemptsMade >= (job.opts.attempts ?? 1);
      opts.metrics.notifications.inc({ target: job.data.target, outcome: final ? 'failed' : 'retried' });
      log.warn({ target: job.data.target, event: job.data.event.id, attempt: job.attemptsMade, final, err: err.message }, final ? 'notification not delivered; giving up' : 'notification not delivered; will retry');
    });
    this.worker.on('completed', (job) => {
      opts.metrics.notifications.inc({ target: job.data.target, outcome: 'delivered' });
      log.info({ target: job.data.target, event: job.data.event.id, attempt: job.attemptsMade }, 'notification delivered');
    });
  }

  private async process(job: Job<DeliveryData>): Promise<void> {
    const { target, event } = job.data;
    const t = this.opts.config.targets[target];
    const secret = this.opts.secrets.get(target);
    if (!t || !secret) throw new UnrecoverableError(`target "${target}" is no longer configured`);
    await deliver({ url: t.url, secret, timeoutSeconds: t.timeoutSeconds, event, attempt: job.attemptsMade + 1, userAgent: `caelum-scheduler/${this.opts.version}` });
  }

  close(): Promise<void> {
    this.closing ??= this.worker.close();
    return this.closing;
  }
}
