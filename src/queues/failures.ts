// Jobs that failed for good since a time, newest first, each with its reason and log tail: "what
// failed since yesterday and why". BullMQ's failed set holds only jobs with no attempt left (a job
// that will be retried waits in `delayed`), scored by the time it finished, so each queue answers
// with one range read and one count.
import type { Job } from 'bullmq';
import type { JobKind } from './kinds.js';
import type { JobData } from './payloads.js';
import type { QueueEntry, QueueSet } from './queue-set.js';
import { logTail, summarise, type JobSummary } from './jobs.js';

/** Log lines sent with each failure: enough to see the error without opening the job. */
export const FAILURE_LOG_LINES = 20;

export interface FailureQuery {
  since: Date;
  kind?: JobKind | undefined;
  limit: number;
}

export interface Failure extends JobSummary {
  /** What the job was asked to do: which symbol, model or checkpoint failed. */
  payload: unknown;
  logs: string[];
}

export async function listFailures(queues: QueueSet, q: FailureQuery): Promise<{ failures: Failure[]; total: number }> {
  queues.assertReachable();
  const redis = queues.connection;
  const min = q.since.getTime();
  const entries = q.kind ? queues.ofKind(q.kind) : queues.all();
  const perQueue = await Promise.all(
    entries.map(async (entry) => {
      const key = entry.queue.toKey('failed');
      const [flat, count] = await Promise.all([
        redis.zrevrangebyscore(key, '+inf', min, 'WITHSCORES', 'LIMIT', 0, q.limit),
        redis.zcount(key, min, '+inf'),
      ]);
      const found: { entry: QueueEntry; id: string; finishedAt: number }[] = [];
      for (let i = 0; i + 1 < flat.length; i += 2) found.push({ entry, id: flat[i]!, finishedAt: Number(flat[i + 1]) });
      return { found, count };
    }),
  );
  const newest = perQueue
    .flatMap((p) => p.found)
    .sort((a, b) => b.finishedAt - a.finishedAt)
    .slice(0, q.limit);
  const read = await Promise.all(
    newest.map(async ({ entry, id }): Promise<Failure | undefined> => {
      const [job, logs] = await Promise.all([entry.queue.getJob(id) as Promise<Job<JobData> | undefined>, logTail(entry, id, FAILURE_LOG_LINES)]);
      // Removed or retried between the range read and this one: no longer a failure to show.
      if (!job || job.finishedOn === undefined || job.failedReason === undefined) return undefined;
      return { ...summarise(entry, job, 'failed'), payload: job.data.payload, logs };
    }),
  );
  return { failures: read.filter((f): f is Failure => f !== undefined), total: perQueue.reduce((sum, p) => sum + p.count, 0) };
}
