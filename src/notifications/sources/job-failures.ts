// job.failed: a job in a queue's failed set failed for good: BullMQ moves a job there only after
// its last attempt, an UnrecoverableError, or a stall past the limit (which no worker settles
// itself, so reading the set catches what a worker-side hook would miss). Cancelled jobs land
// there too and are not told of: an operator asked for it.
import { failedKey } from '../../queues/redis-names.js';
import { eventId, makeEvent, plain, type NotificationEvent } from '../events.js';
import type { NotificationSource } from './source.js';

const PAGE = 200;

export const jobFailures: NotificationSource = {
  name: 'job-failures',
  async read(ctx, sinceMs) {
    const events: NotificationEvent[] = [];
    for (const { spec, queue } of ctx.queues.all()) {
      // Page through the window: the cursor moves past all of it once this pass has enqueued.
      const flat: string[] = [];
      for (;;) {
        const page = await ctx.redis.zrangebyscore(failedKey(ctx.prefix, spec.name), sinceMs, '+inf', 'WITHSCORES', 'LIMIT', flat.length / 2, PAGE);
        flat.push(...page);
        if (page.length < 2 * PAGE) break;
      }
      for (let i = 0; i + 1 < flat.length; i += 2) {
        const id = flat[i]!;
        const finishedOn = Number(flat[i + 1]);
        if (ctx.known(eventId('job.failed', id, finishedOn))) continue;
        const job = await queue.getJob(id);
        if (!job || job.failedReason === 'cancelled') continue;
        const what = spec.model ? `${spec.kind} of ${spec.model}` : spec.kind;
        const attempts = `${job.attemptsMade} attempt${job.attemptsMade === 1 ? '' : 's'}`;
        events.push(
          makeEvent('job.failed', [id, finishedOn], finishedOn, `:x: ${what} job ${id} failed for good after ${attempts}: ${plain(job.failedReason)}`, {
            jobId: id,
            queue: spec.name,
            kind: spec.kind,
            ...(spec.model ? { model: spec.model } : {}),
            attempts: job.attemptsMade,
            reason: job.failedReason,
          }),
        );
      }
    }
    return events;
  },
};
