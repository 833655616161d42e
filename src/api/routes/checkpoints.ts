// The checkpoint registry over HTTP: listing, one checkpoint with its lineage, the FinColl feed,
// FinColl's load reports, promotion and rollback (the last three through the checkpoint
// lifecycle, which refuses a step its table does not allow with a 409).
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import { createCheckpointLifecycle } from '../../checkpoints/lifecycle.js';
import type { LoadedFleet } from '../../config/load-fleet.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import type { FeedCheckpoint } from '../../registry/checkpoints.js';
import { checkpointIdParam, checkpointListQuery, feedQuery, loadedBody, reasonBody, type FeedEntry } from '../schemas.js';
import type { FeedIndex } from '../../checkpoints/feed-index.js';
import type { FeedSignal } from '../../checkpoints/feed-signal.js';
import type { Registry } from '../../registry/index.js';
import type { Logger } from '../../logger.js';
import type { QueueSet } from '../../queues/queue-set.js';
import { parseInput } from '../../validation.js';
import { actorOf } from '../auth.js';

export interface CheckpointRouteDeps {
  fleet: LoadedFleet;
  registry: Registry;
  feed: FeedSignal;
  feedIndex: FeedIndex;
  queues: QueueSet;
  redis: Redis;
  logger: Logger;
}

const FEED_PAGE = 100;

function feedEntry(c: FeedCheckpoint): FeedEntry {
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
    seq: c.feedSeq!,
    validatedAt: c.validatedAt,
  };
}

export async function checkpointRoutes(app: FastifyInstance, deps: CheckpointRouteDeps): Promise<void> {
  const { registry, fleet, feed, queues } = deps;
  const lifecycle = createCheckpointLifecycle({ registry, fleet, queues, redis: deps.redis, prefix: queues.prefix, logger: deps.logger });
  // Built once: a schema per request would be the largest cost of a feed poll.
  const listSchema = checkpointListQuery(fleet);
  const feedSchema = feedQuery(fleet);

  app.get('/api/checkpoints', { config: { access: 'read' } }, async (request) => {
    const q = parseInput(listSchema, request.query, 'query');
    const { checkpoints, total } = await registry.checkpoints.list(q);
    return { checkpoints, total, limit: q.limit, offset: q.offset };
  });

  // FinColl's token (report-loads) may read the feed, and nothing else but report loads.
  app.get('/api/checkpoints/feed', { config: { access: ['read', 'report-loads'] } }, async (request, reply) => {
    const q = parseInput(feedSchema, request.query, 'feed query');
    // A poll with nothing new, answered from memory: no Postgres round trip (feed-index.ts).
    const ifNoneMatch = request.headers['if-none-match'];
    if (q.wait === 0 && ifNoneMatch !== undefined) {
      const newest = deps.feedIndex.newestSeq(q.model);
      const unchanged = `"feed-${q.model ?? '*'}-${q.after}-${q.after}"`;
      if (newest !== undefined && newest <= q.after && ifNoneMatch === unchanged) {
        return reply.header('etag', unchanged).header('cache-control', 'no-cache').status(304).send();
      }
    }
    const query = { ...(q.model ? { model: q.model } : {}), after: q.after, limit: FEED_PAGE };
    let rows: FeedCheckpoint[] = q.wait === 0 ? await registry.checkpoints.feed(query) : [];
    const deadline = Date.now() + q.wait * 1000;
    const gone = new AbortController();
    if (q.wait > 0) request.raw.once('close', () => gone.abort());
    while (q.wait > 0) {
      // Listen before looking, so a validation committed in between still wakes us.
      const listening = new AbortController();
      const woke = feed.wait(q.model, Math.max(0, deadline - Date.now()), AbortSignal.any([listening.signal, gone.signal]));
      rows = await registry.checkpoints.feed(query);
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
    const { id } = parseInput(checkpointIdParam, request.params, 'checkpoint id');
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

  app.post('/api/checkpoints/:id/loaded', { config: { access: 'report-loads' } }, async (request) => {
    const { id } = parseInput(checkpointIdParam, request.params, 'checkpoint id');
    const body = parseInput(loadedBody, request.body, 'body');
    await lifecycle.markLoaded(id, body.instance, body.details, actorOf(request));
    return { checkpoint: id, instance: body.instance, recorded: true };
  });

  app.post('/api/checkpoints/:id/promote', { config: { access: 'operate' } }, async (request) => {
    const { id } = parseInput(checkpointIdParam, request.params, 'checkpoint id');
    const { reason } = parseInput(reasonBody, request.body ?? {}, 'body');
    const checkpoint = await lifecycle.promote(id, `api (${actorOf(request)})`, reason ?? 'promoted through the API');
    return { checkpoint };
  });

  app.post<{ Params: { model: string } }>('/api/models/:model/rollback', { config: { access: 'operate' } }, async (request) => {
    const name = request.params.model;
    if (!(name in fleet.models)) {
      throw new ValidationError(`unknown model "${name}"`, [{ path: 'model', message: `unknown model "${name}"` }]);
    }
    const { reason } = parseInput(reasonBody, request.body ?? {}, 'body');
    const { from, to } = await lifecycle.rollback(name, `api (${actorOf(request)})`, reason ?? 'rolled back through the API');
    return { rolledBack: from, promoted: to };
  });
}
