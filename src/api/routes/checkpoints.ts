// The checkpoint registry over HTTP: listing, one checkpoint with its lineage, the FinColl feed,
// FinColl's load reports, promotion and rollback.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { LoadedFleet } from '../../config/load-fleet.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { CHECKPOINT_STATUSES, type Checkpoint } from '../../registry/checkpoints.js';
import type { FeedSignal } from '../../registry/feed-signal.js';
import type { Registry } from '../../registry/index.js';
import { parseInput } from '../../validation.js';

export interface CheckpointRouteDeps {
  fleet: LoadedFleet;
  registry: Registry;
  feed: FeedSignal;
}

/** The longest a feed request may be held open, in seconds. */
export const FEED_MAX_WAIT_SECONDS = 30;
const FEED_PAGE = 100;

const modelName = (fleet: LoadedFleet) =>
  z.string().refine((m) => m in fleet.models, {
    error: (issue) => `unknown model "${String(issue.input)}"; known: ${Object.keys(fleet.models).join(', ')}`,
  });

const idParam = z.object({ id: z.string().regex(/^[1-9][0-9]{0,15}$/, 'a checkpoint id is a positive integer').transform(Number) });

function feedEntry(c: Checkpoint) {
  return {
    id: c.id,
    model: c.model,
    label: c.label,
    version: c.version,
    path: c.path,
    sha256: c.sha256,
    sizeBytes: c.sizeBytes,
    metrics: c.validationMetrics ?? c.metrics,
    status: c.status,
    seq: c.feedSeq,
  };
}

export async function checkpointRoutes(app: FastifyInstance, deps: CheckpointRouteDeps): Promise<void> {
  const { registry, fleet, feed } = deps;
  const model = modelName(fleet);

  app.get('/api/checkpoints', { config: { access: 'read' } }, async (request) => {
    const q = parseInput(
      z.strictObject({
        model: model.optional(),
        status: z.enum(CHECKPOINT_STATUSES).optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        offset: z.coerce.number().int().min(0).default(0),
      }),
      request.query,
      'query',
    );
    const { checkpoints, total } = await registry.checkpoints.list(q);
    return { checkpoints, total, limit: q.limit, offset: q.offset };
  });

  app.get('/api/checkpoints/feed', { config: { access: 'read' } }, async (request, reply) => {
    const q = parseInput(
      z.strictObject({
        model: model.optional(),
        after: z.string().regex(/^(0|[1-9][0-9]{0,15})$/, 'the cursor is the "cursor" of the previous answer (a whole number)').default('0').transform(Number),
        wait: z.coerce.number().int().min(0).max(FEED_MAX_WAIT_SECONDS, `wait is at most ${FEED_MAX_WAIT_SECONDS} seconds`).default(0),
      }),
      request.query,
      'feed query',
    );
    const deadline = Date.now() + q.wait * 1000;
    const gone = new AbortController();
    request.raw.once('close', () => gone.abort());
    let rows: Checkpoint[];
    for (;;) {
      // Listen before looking, so a validation committed in between still wakes us.
      const listening = new AbortController();
      const woke = feed.wait(q.model, Math.max(0, deadline - Date.now()), AbortSignal.any([listening.signal, gone.signal]));
      rows = await registry.checkpoints.feed({ ...(q.model ? { model: q.model } : {}), after: q.after, limit: FEED_PAGE });
      if (rows.length > 0 || Date.now() >= deadline || gone.signal.aborted) {
        listening.abort();
        break;
      }
      await woke;
    }
    const cursor = String(rows.at(-1)?.feedSeq ?? q.after);
    const etag = `"feed-${q.model ?? '*'}-${q.after}-${cursor}"`;
    void reply.header('etag', etag).header('cache-control', 'no-cache');
    if (q.wait === 0 && request.headers['if-none-match'] === etag) return reply.status(304).send();
    return { checkpoints: rows.map(feedEntry), cursor };
  });

  app.get('/api/checkpoints/:id', { config: { access: 'read' } }, async (request) => {
    const { id } = parseInput(idParam, request.params, 'checkpoint id');
    const checkpoint = await registry.checkpoints.get(id);
    if (!checkpoint) throw new NotFoundError(`no checkpoint ${id}`);
    const [history, validations, loads] = await Promise.all([
      registry.checkpoints.history(id),
      registry.deployments.forCheckpoint(id),
      registry.checkpoints.loads(id),
    ]);
    return {
      checkpoint,
      lineage: { trainingJobId: checkpoint.trainingJobId, trigger: checkpoint.trigger, validations },
      history,
      loads,
    };
  });

  app.post('/api/checkpoints/:id/loaded', { config: { access: 'operate' } }, async (request) => {
    const { id } = parseInput(idParam, request.params, 'checkpoint id');
    const body = parseInput(
      z.strictObject({
        instance: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/, 'must name the FinColl instance'),
        details: z.record(z.string(), z.unknown()).optional(),
      }),
      request.body,
      'body',
    );
    await registry.checkpoints.recordLoad(id, body.instance, body.details);
    return { checkpoint: id, instance: body.instance, recorded: true };
  });

  const reasonBody = z.strictObject({ reason: z.string().min(1).max(500).optional() }).default({});

  app.post('/api/checkpoints/:id/promote', { config: { access: 'operate' } }, async (request) => {
    const { id } = parseInput(idParam, request.params, 'checkpoint id');
    const { reason } = parseInput(reasonBody, request.body ?? {}, 'body');
    const checkpoint = await registry.checkpoints.promote(id, `api (${request.principal})`, reason ?? 'promoted through the API');
    return { checkpoint };
  });

  app.post<{ Params: { model: string } }>('/api/models/:model/rollback', { config: { access: 'operate' } }, async (request) => {
    const name = request.params.model;
    if (!(name in fleet.models)) {
      throw new ValidationError(`unknown model "${name}"`, [{ path: 'model', message: `unknown model "${name}"` }]);
    }
    const { reason } = parseInput(reasonBody, request.body ?? {}, 'body');
    const { from, to } = await registry.checkpoints.rollback(name, `api (${request.principal})`, reason ?? 'rolled back through the API');
    return { rolledBack: from, promoted: to };
  });
}
