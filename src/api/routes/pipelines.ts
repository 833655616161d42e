// POST /api/pipelines/research and GET /api/pipelines/{id}: start a research pipeline and follow
// its steps (training, backtests per symbol, summary) to the summary.
import type { FastifyInstance } from 'fastify';
import type { Job } from 'bullmq';
import type { LoadedFleet } from '../../config/load-fleet.js';
import { NotFoundError } from '../../errors.js';
import { pipelineJobIds, researchBody, startResearch, type ResearchSpec } from '../../pipelines/research.js';
import type { QueueSet } from '../../queues/queue-set.js';
import { queueOfJobId } from '../../queues/placement.js';
import type { Registry } from '../../registry/index.js';
import { parseInput } from '../../validation.js';
import { actorOf } from '../auth.js';

async function step(queues: QueueSet, id: string) {
  const job = (await queues.get(queueOfJobId(id) ?? '')?.queue.getJob(id)) as Job | undefined;
  if (!job) return { id, state: 'not started' as string, progress: null, failureReason: null };
  return { id, state: await job.getState(), progress: job.progress ?? null, failureReason: job.failedReason ?? null };
}

export async function pipelineRoutes(app: FastifyInstance, deps: { fleet: LoadedFleet; queues: QueueSet; registry: Registry }): Promise<void> {
  const body = researchBody(deps.fleet);

  app.post('/api/pipelines/research', { config: { access: 'enqueue' } }, async (request, reply) => {
    const spec = parseInput(body, request.body, 'research pipeline');
    const started = await startResearch(deps, spec, `api (${actorOf(request)})`);
    return reply.status(201).send({ id: started.id, state: 'training', trainingJobId: started.trainingJobId });
  });

  app.get<{ Params: { id: string } }>('/api/pipelines/:id', { config: { access: 'read' } }, async (request) => {
    const id = request.params.id;
    const pipeline = /^[A-Za-z0-9-]{1,64}$/.test(id) ? await deps.registry.pipelines.get(id) : undefined;
    if (!pipeline) throw new NotFoundError(`no pipeline "${id}"`);
    const spec = pipeline.spec as ResearchSpec;
    const ids = pipelineJobIds(id, spec.symbols, true);
    const training = await step(deps.queues, pipeline.trainingJobId);
    const candidates = await Promise.all(ids.candidates.map(async (c) => ({ symbol: c.symbol, checkpoint: 'candidate', ...(await step(deps.queues, c.id)) })));
    const live = (await Promise.all(ids.live.map(async (c) => ({ symbol: c.symbol, checkpoint: 'promoted', ...(await step(deps.queues, c.id)) })))).filter(
      (s) => s.state !== 'not started' || pipeline.summary === null,
    );
    const summary = await step(deps.queues, ids.summary);
    const state =
      training.state === 'failed' || summary.state === 'failed'
        ? 'failed'
        : pipeline.summary
          ? 'completed'
          : pipeline.summaryJobId
            ? 'backtesting'
            : 'training';
    return {
      id,
      kind: pipeline.kind,
      state,
      model: pipeline.model,
      spec,
      checkpointId: pipeline.checkpointId,
      steps: { training, backtests: [...candidates, ...live.filter((s) => s.state !== 'not started')], summary },
      summary: pipeline.summary,
      createdAt: pipeline.createdAt,
    };
  });
}
