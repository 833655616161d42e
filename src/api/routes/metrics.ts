// GET /metrics: this process's metrics plus fleet-wide gauges read at scrape time (queue depths,
// live workers, waiting feed clients). Open like /api/health, as Prometheus scrapes expect; it
// carries no secrets and no job ids.
import type { FastifyInstance } from 'fastify';
import { Gauge } from 'prom-client';
import type { Metrics } from '../../metrics.js';
import type { QueueSet } from '../../queues/queue-set.js';
import type { FeedSignal } from '../../checkpoints/feed-signal.js';
import { listWorkers } from '../../queues/worker-status.js';
import { registerFleetGauges, type FleetGaugeDeps } from '../fleet-gauges.js';

export async function metricsRoutes(app: FastifyInstance, deps: FleetGaugeDeps & { metrics: Metrics; queues: QueueSet; feed: FeedSignal }): Promise<void> {
  const registers = [deps.metrics.registry];
  const { queues, feed } = deps;
  new Gauge({
    name: 'caelum_jobs',
    help: 'Jobs by queue, kind and state',
    labelNames: ['queue', 'kind', 'state'] as const,
    registers,
    async collect() {
      this.reset();
      if (queues.connection.status !== 'ready') return;
      await Promise.all(
        queues.all().map(async ({ spec, queue }) => {
          const counts = await queue.getJobCounts();
          for (const [state, n] of Object.entries(counts)) this.set({ queue: spec.name, kind: spec.kind, state }, n);
        }),
      );
    },
  });
  new Gauge({
    name: 'caelum_workers_live',
    help: 'Live host workers (1 per host instance heartbeating); 0 for a configured host without one',
    labelNames: ['host'] as const,
    registers,
    async collect() {
      this.reset();
      if (queues.connection.status !== 'ready') return;
      for (const host of Object.keys(deps.fleet.hosts)) this.set({ host }, 0);
      for (const w of await listWorkers(queues.connection, queues.prefix)) this.inc({ host: w.host });
    },
  });
  new Gauge({
    name: 'caelum_feed_waiting_clients',
    help: 'Feed requests held open waiting for a checkpoint',
    registers,
    collect() {
      this.set(feed.waiting);
    },
  });

  registerFleetGauges(deps);

  app.get('/metrics', { config: { access: 'public' } }, async (_request, reply) => {
    const body = await deps.metrics.registry.metrics();
    return reply.header('content-type', deps.metrics.registry.contentType).send(body);
  });
}
