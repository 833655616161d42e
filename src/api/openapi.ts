// The OpenAPI document served at /docs, generated from the zod schemas the routes validate with
// (zod's own JSON Schema output), so clients are written against what the server accepts.
import { z } from 'zod';
import type { LoadedFleet } from '../config/load-fleet.js';
import { JOB_KINDS } from '../queues/kinds.js';
import { payloadSchemas } from '../queues/payloads.js';
import {
  checkpointListQuery,
  drainBody,
  failureListQuery,
  feedQuery,
  feedResponse,
  jobListQuery,
  loadedBody,
  reasonBody,
  resumeBody,
  scheduleHistoryQuery,
  triggerBody,
  undrainBody,
} from './schemas.js';
import { researchBody } from '../pipelines/research.js';
import { backtestListQuery, backtestSummaryQuery } from './routes/backtests.js';
import { ANY_TOKEN, grantingScopes, type Access } from './auth.js';

interface RouteDoc {
  method: 'get' | 'post';
  path: string;
  summary: string;
  access: Access;
  query?: z.ZodType;
  body?: z.ZodType;
  /** The success answer's shape, where it is documented. */
  response?: z.ZodType;
  ok?: number;
  /** Takes an Idempotency-Key header. */
  idempotent?: boolean;
}

const json = (schema: z.ZodType, io: 'input' | 'output' = 'input') => z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'openapi-3.0' });

function parameters(route: RouteDoc) {
  const params: { name: string | undefined; in: string; required: boolean; schema: { type: string }; description?: string }[] = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => ({ name: m[1], in: 'path', required: true, schema: { type: 'string' } }));
  if (route.idempotent) {
    params.push({ name: 'Idempotency-Key', in: 'header', required: false, schema: { type: 'string' }, description: 'A retry with the same key returns the first request\'s job (200) instead of adding another' });
  }
  if (route.query) {
    const schema = json(route.query) as { properties?: Record<string, unknown>; required?: string[] };
    for (const [name, s] of Object.entries(schema.properties ?? {})) {
      params.push({ name, in: 'query', required: schema.required?.includes(name) ?? false, schema: s as { type: string } });
    }
  }
  return params;
}

export function openApiDocument(fleet: LoadedFleet, version: string) {
  const routes: RouteDoc[] = [
    ...JOB_KINDS.map((kind) => ({
      method: 'post' as const,
      path: `/api/jobs/${kind}`,
      summary: `Enqueue a ${kind} job`,
      access: 'enqueue' as const,
      body: payloadSchemas[kind],
      ok: 201,
      idempotent: true,
    })),
    { method: 'get', path: '/api/jobs', summary: 'List jobs, newest first', access: 'read', query: jobListQuery },
    { method: 'get', path: '/api/jobs/{id}', summary: 'A job: state, progress, attempts, result, failure, log tail, why it waits', access: 'read' },
    { method: 'post', path: '/api/jobs/{id}/cancel', summary: 'Cancel a job (a running one ends its process group)', access: 'operate' },
    { method: 'post', path: '/api/jobs/{id}/retry', summary: 'Retry a failed job', access: 'operate' },
    { method: 'get', path: '/api/schedules', summary: 'Schedules with their next five fire times', access: 'read' },
    { method: 'get', path: '/api/schedules/{name}', summary: 'A schedule and its fire history', access: 'read', query: scheduleHistoryQuery },
    { method: 'post', path: '/api/schedules/{name}/pause', summary: 'Pause a schedule', access: 'operate', body: reasonBody },
    { method: 'post', path: '/api/schedules/{name}/resume', summary: 'Resume a schedule', access: 'operate', body: resumeBody },
    { method: 'post', path: '/api/schedules/{name}/trigger', summary: 'Run a schedule now', access: 'operate', body: triggerBody, ok: 201 },
    { method: 'get', path: '/api/checkpoints', summary: 'The checkpoint registry', access: 'read', query: checkpointListQuery(fleet) },
    { method: 'get', path: '/api/checkpoints/feed', summary: 'Validated checkpoints after a cursor; long-polls with wait', access: ['read', 'report-loads'], query: feedQuery(fleet), response: feedResponse },
    { method: 'get', path: '/api/checkpoints/{id}', summary: 'A checkpoint with its history, lineage and loads', access: 'read' },
    { method: 'post', path: '/api/checkpoints/{id}/loaded', summary: 'FinColl reports it loaded a checkpoint', access: 'report-loads', body: loadedBody },
    { method: 'post', path: '/api/checkpoints/{id}/promote', summary: 'Promote a validated checkpoint', access: 'operate', body: reasonBody },
    { method: 'post', path: '/api/models/{model}/rollback', summary: 'Roll back to the previous validated checkpoint', access: 'operate', body: reasonBody },
    { method: 'post', path: '/api/pipelines/research', summary: 'Train, then backtest across symbols in parallel, then summarise', access: 'enqueue', body: researchBody(fleet), ok: 201 },
    { method: 'get', path: '/api/pipelines/{id}', summary: 'A pipeline: each step with its state and progress, and the summary', access: 'read' },
    { method: 'get', path: '/api/backtests', summary: 'Backtest results, newest first', access: 'read', query: backtestListQuery(fleet) },
    { method: 'get', path: '/api/backtests/summary', summary: 'Averages, best and count per model, symbol or checkpoint', access: 'read', query: backtestSummaryQuery(fleet) },
    { method: 'get', path: '/api/data-sync', summary: 'Market-data keys: last sync, age, staleness, fencing token, holder, state', access: 'read' },
    { method: 'get', path: '/api/workers', summary: 'Live host workers, their GPUs, drains and running jobs', access: 'read' },
    { method: 'post', path: '/api/workers/{host}/drain', summary: 'Start no new job on a host or one of its GPUs; with now, hand its running jobs back', access: 'operate', body: drainBody },
    { method: 'post', path: '/api/workers/{host}/undrain', summary: "Lift a GPU's drain, or (no gpu) every drain of the host", access: 'operate', body: undrainBody },
    { method: 'get', path: '/api/auth/me', summary: "The token's principal and scopes (read, operate)", access: 'read' },
    { method: 'get', path: '/api/fleet', summary: 'The fleet as configured: hosts, GPUs, pools, models with their thresholds', access: 'read' },
    { method: 'get', path: '/api/failures', summary: 'Jobs that failed for good since a time, newest first, with reason and log tail', access: 'read', query: failureListQuery },
    { method: 'get', path: '/api/health', summary: 'Liveness: Redis and Postgres reachable', access: 'public' },
    { method: 'get', path: '/api/auth/me', summary: "The caller's token: its name and scopes", access: ANY_TOKEN },
    { method: 'get', path: '/api/system/health', summary: 'Redis, Postgres, workers, training with ETA, next fires', access: 'read' },
    { method: 'get', path: '/metrics', summary: 'Prometheus metrics', access: 'public' },
  ];
  const paths: Record<string, Record<string, unknown>> = {};
  for (const r of routes) {
    paths[r.path] ??= {};
    const scopes = r.access === 'public' ? [] : grantingScopes(r.access);
    paths[r.path]![r.method] = {
      summary: r.summary,
      ...(r.access === 'public' ? { security: [] } : {}),
      description: r.access === 'public' ? 'No token needed.' : `Needs a token with one of the scopes ${scopes.join(', ')}.`,
      // The scopes that may call it, for clients and for the test that holds the doc to the routes.
      'x-scopes': scopes,
      parameters: parameters(r),
      ...(r.body ? { requestBody: { required: r.method === 'post' && r.ok === 201, content: { 'application/json': { schema: json(r.body) } } } } : {}),
      responses: {
        [String(r.ok ?? 200)]: { description: 'OK', ...(r.response ? { content: { 'application/json': { schema: json(r.response, 'output') } } } : {}) },
        '400': { $ref: '#/components/responses/Error' },
        ...(r.access !== 'public' ? { '401': { $ref: '#/components/responses/Error' }, '403': { $ref: '#/components/responses/Error' } } : {}),
      },
    };
  }
  return {
    openapi: '3.0.3',
    info: { title: 'caelum-scheduler', version },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: {
        Error: {
          description: 'An error: {error, message, details?}',
          content: {
            'application/json': {
              schema: {
                type: 'object',
                required: ['error', 'message'],
                properties: {
                  error: { type: 'string' },
                  message: { type: 'string' },
                  details: { type: 'array', items: { type: 'object', properties: { path: { type: 'string' }, message: { type: 'string' } } } },
                  required: { type: 'array', items: { type: 'string' }, description: '401 and 403: the scopes of which the route needs one' },
                  token: { type: 'string', description: "403: the name of the token that was refused" },
                  granted: { type: 'array', items: { type: 'string' }, description: '403: the scopes that token has' },
                },
              },
            },
          },
        },
      },
    },
    security: [{ bearer: [] }],
    paths,
  };
}
