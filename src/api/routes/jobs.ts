// /api/jobs: enqueue, read, list, cancel and retry jobs of every kind.
import type { FastifyInstance } from 'fastify';
import { NotFoundError } from '../../errors.js';
import { enqueue, type EnqueueDeps } from '../../queues/enqueue.js';
import { IDEMPOTENCY_HEADER, idempotencyKeyOf } from '../../queues/idempotency.js';
import { cancelJob, getJobView, listJobs, retryJob } from '../../queues/jobs.js';
import { jobListQuery } from '../schemas.js';
import { isJobKind, JOB_KINDS } from '../../queues/kinds.js';
import { parseInput } from '../../validation.js';
import { actorOf } from '../auth.js';

export async function jobRoutes(app: FastifyInstance, deps: EnqueueDeps): Promise<void> {
  // A deduplicated data sync created nothing: 200 with the id of the sync already waiting. So does
  // a retry with an Idempotency-Key already used: 200 with the first attempt's job.
  app.post<{ Params: { kind: string } }>('/api/jobs/:kind', { config: { access: 'enqueue' } }, async (request, reply) => {
    const { kind } = request.params;
    if (!isJobKind(kind)) throw new NotFoundError(`unknown job kind "${kind}"; known: ${JOB_KINDS.join(', ')}`);
    const by = actorOf(request);
    const key = idempotencyKeyOf(request.headers[IDEMPOTENCY_HEADER]);
    const job = await enqueue(deps, kind, request.body, { reason: 'api', by, at: new Date().toISOString() }, key ? { idempotency: { key, by } } : {});
    return reply.status(job.deduplicated || job.replayed ? 200 : 201).send(job);
  });

  app.get('/api/jobs', { config: { access: 'read' } }, async (request) => {
    const query = parseInput(jobListQuery, request.query, 'query');
    const { jobs, total } = await listJobs(deps.queues, query);
    return { jobs, total, limit: query.limit, offset: query.offset };
  });

  app.get<{ Params: { id: string } }>('/api/jobs/:id', { config: { access: 'read' } }, async (request) =>
    getJobView(deps.queues, request.params.id, deps.fleet),
  );

  app.post<{ Params: { id: string } }>('/api/jobs/:id/cancel', { config: { access: 'operate' } }, async (request, reply) => {
    const result = await cancelJob(deps.queues, request.params.id, actorOf(request));
    return reply.status(result.state === 'cancelled' ? 200 : 202).send(result);
  });

  app.post<{ Params: { id: string } }>('/api/jobs/:id/retry', { config: { access: 'operate' } }, async (request) =>
    retryJob(deps.queues, request.params.id),
  );
}
