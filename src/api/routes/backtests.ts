// GET /api/backtests and GET /api/backtests/summary: results and their aggregates, in SQL.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { LoadedFleet } from '../../config/load-fleet.js';
import { GROUP_BY } from '../../registry/backtests.js';
import type { Registry } from '../../registry/index.js';
import { parseInput } from '../../validation.js';
import { modelName } from '../schemas.js';
import { isoDateSchema, symbolSchema } from '../../queues/payloads.js';

export const backtestListQuery = (fleet: LoadedFleet) =>
  z.strictObject({
    model: modelName(fleet).optional(),
    symbol: symbolSchema.optional(),
    checkpoint: z.coerce.number().int().positive().optional(),
    since: isoDateSchema.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
    offset: z.coerce.number().int().min(0).default(0),
  });

export const backtestSummaryQuery = (fleet: LoadedFleet) =>
  z.strictObject({
    groupBy: z.enum(GROUP_BY).default('model'),
    model: modelName(fleet).optional(),
    since: isoDateSchema.optional(),
  });

export async function backtestRoutes(app: FastifyInstance, deps: { fleet: LoadedFleet; registry: Registry }): Promise<void> {
  const list = backtestListQuery(deps.fleet);
  const summary = backtestSummaryQuery(deps.fleet);
  app.get('/api/backtests', { config: { access: 'read' } }, async (request) => {
    const q = parseInput(list, request.query, 'query');
    const { results, total } = await deps.registry.backtests.list({ ...q, ...(q.checkpoint ? { checkpointId: q.checkpoint } : {}) });
    return { results, total, limit: q.limit, offset: q.offset };
  });
  app.get('/api/backtests/summary', { config: { access: 'read' } }, async (request) => {
    const q = parseInput(summary, request.query, 'query');
    return { groupBy: q.groupBy, since: q.since ?? null, groups: await deps.registry.backtests.summary(q) };
  });
}
