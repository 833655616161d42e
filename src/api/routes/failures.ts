// GET /api/failures: jobs that failed for good since a time (default: the last 24 hours), newest
// first, with the failure reason and the tail of the log; POST /api/jobs/{id}/retry retries one.
import type { FastifyInstance } from 'fastify';
import { listFailures } from '../../queues/failures.js';
import type { QueueSet } from '../../queues/queue-set.js';
import { parseInput } from '../../validation.js';
import { FAILURES_DEFAULT_HOURS, failureListQuery } from '../schemas.js';

export async function failureRoutes(app: FastifyInstance, deps: { queues: QueueSet }): Promise<void> {
  app.get('/api/failures', { config: { access: 'read' } }, async (request) => {
    const q = parseInput(failureListQuery, request.query, 'query');
    const since = q.since ? new Date(q.since) : new Date(Date.now() - FAILURES_DEFAULT_HOURS * 3600_000);
    const { failures, total } = await listFailures(deps.queues, { since, kind: q.kind, limit: q.limit });
    return { since: since.toISOString(), failures, total, limit: q.limit };
  });
}
