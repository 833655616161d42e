// GET /api/workers: the live host workers, from their heartbeats.
import type { FastifyInstance } from 'fastify';
import type { QueueSet } from '../../queues/queue-set.js';
import { listWorkers } from '../../queues/worker-status.js';

export async function workerRoutes(app: FastifyInstance, deps: { queues: QueueSet }): Promise<void> {
  app.get('/api/workers', { config: { access: 'read' } }, async () => {
    deps.queues.assertReachable();
    return { workers: await listWorkers(deps.queues.connection, deps.queues.prefix) };
  });
}
