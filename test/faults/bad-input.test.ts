// Issue 13, item 8: every bad input is a 4xx that names it. A table over every route that takes
// input, each row one bad field (a NUL byte, an unpaired surrogate, a date Postgres cannot
// store), expecting the status and the field named; nothing any of them sends is enqueued or
// written. Then ids as long as their schemas allow reach their routes (no 414), and what the
// router itself refuses answers in the service's `{error, message}` shape.
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../../src/config/load-fleet.js';
import { NAME_MAX_LENGTH } from '../../src/config/fleet-schema.js';
import { MAX_JOB_ID_LENGTH } from '../../src/queues/placement.js';
import { asOperator, countAllJobs, startApi, type ApiHarness } from '../helpers/api.js';
import { REPO_ROOT, testFleetInput } from '../helpers/fleet.js';

const LONG_MODEL = 'm'.repeat(NAME_MAX_LENGTH);
const base = testFleetInput();
const fleet = parseFleet(
  {
    ...base,
    models: { ...base.models, [LONG_MODEL]: { ...base.models['model-b']!, checkpointDir: 'var/test-checkpoints/long' } },
    schedules: { nightly: { cron: '0 3 * * *', timezone: 'UTC', enqueue: { kind: 'training', model: 'model-b' } } },
  },
  '(bad input)',
  REPO_ROOT,
);

const NUL = 'a\u0000b';
const research = { model: 'model-a', primarySymbol: 'AAPL', symbols: ['AAPL', 'MSFT'] };
const TABLES = ['checkpoints', 'checkpoint_events', 'checkpoint_loads', 'deployment_history', 'backtest_results', 'schedule_fires', 'schedule_state', 'market_data_syncs', 'market_data_sync_log', 'pipelines'];

interface Row {
  route: string;
  method: 'GET' | 'POST';
  url: string;
  payload?: string | object;
  status: number;
  /** The field the answer's details name (a 400), or a text its message holds (a 404). */
  names: { field: string } | { text: string };
}

const body = (route: string, url: string, payload: string | object, field: string): Row => ({ route, method: 'POST', url, payload, status: 400, names: { field } });
const query = (route: string, url: string, field: string): Row => ({ route, method: 'GET', url, status: 400, names: { field } });

const ROWS: Row[] = [
  body('POST /api/jobs/training', '/api/jobs/training', { model: 'model-a', params: { note: NUL } }, 'params.note'),
  // JSON can carry an unpaired surrogate, which jsonb refuses: sent as the raw escape.
  body('POST /api/jobs/training', '/api/jobs/training', '{"model":"model-a","params":{"note":"\\ud800"}}', 'params.note'),
  body('POST /api/jobs/training', '/api/jobs/training', { model: 'model-a', datasetWindow: { from: '0000-01-01', to: '2020-01-01' } }, 'datasetWindow.from'),
  body('POST /api/jobs/backtest', '/api/jobs/backtest', { model: 'model-a', symbols: ['AAPL'], window: { from: '0000-12-31T23:00:00Z', to: '2020-01-01' } }, 'window.from'),
  body('POST /api/jobs/backtest', '/api/jobs/backtest', { model: 'model-a', symbols: [`AAPL${NUL}`] }, 'symbols.0'),
  body('POST /api/jobs/data-sync', '/api/jobs/data-sync', { symbol: 'AAPL', source: NUL }, 'source'),
  body('POST /api/jobs/deploy-test', '/api/jobs/deploy-test', { model: 'model-a', version: NUL }, 'version'),
  body('POST /api/checkpoints/{id}/loaded', '/api/checkpoints/1/loaded', { instance: NUL }, 'instance'),
  body('POST /api/checkpoints/{id}/loaded', '/api/checkpoints/1/loaded', { instance: 'fincoll-1', details: { note: NUL } }, 'details.note'),
  body('POST /api/checkpoints/{id}/loaded', '/api/checkpoints/1/loaded', { instance: 'fincoll-1', details: { runs: [{ tag: 'ok' }, { tag: NUL }] } }, 'details.runs.1.tag'),
  body('POST /api/checkpoints/{id}/loaded', '/api/checkpoints/1/loaded', { instance: 'fincoll-1', details: { [NUL]: 1 } }, `details.${NUL}`),
  body('POST /api/checkpoints/{id}/promote', '/api/checkpoints/1/promote', { reason: NUL }, 'reason'),
  body('POST /api/models/{model}/rollback', '/api/models/model-a/rollback', { reason: NUL }, 'reason'),
  body('POST /api/schedules/{name}/pause', '/api/schedules/nightly/pause', { reason: NUL }, 'reason'),
  body('POST /api/pipelines/research', '/api/pipelines/research', { ...research, params: { note: NUL } }, 'params.note'),
  body('POST /api/pipelines/research', '/api/pipelines/research', { ...research, primarySymbol: NUL }, 'primarySymbol'),
  body('POST /api/pipelines/research', '/api/pipelines/research', { ...research, testWindow: { from: '0000-06-01', to: '2020-01-01' } }, 'testWindow.from'),
  query('GET /api/backtests', '/api/backtests?since=0000-01-01', 'since'),
  query('GET /api/backtests', '/api/backtests?symbol=AAPL%00', 'symbol'),
  query('GET /api/backtests', '/api/backtests?model=model-a%00', 'model'),
  query('GET /api/backtests/summary', '/api/backtests/summary?since=0000-01-01T00:00:00Z', 'since'),
  query('GET /api/checkpoints', '/api/checkpoints?model=model-a%00', 'model'),
  query('GET /api/checkpoints/feed', '/api/checkpoints/feed?after=1%00', 'after'),
  query('GET /api/jobs', '/api/jobs?kind=training%00', 'kind'),
  query('GET /api/schedules/{name}', '/api/schedules/nightly?limit=1%00', 'limit'),
  { route: 'GET /api/checkpoints/{id}', method: 'GET', url: '/api/checkpoints/1%00', status: 400, names: { field: 'id' } },
  { route: 'POST /api/models/{model}/rollback', method: 'POST', url: '/api/models/model-a%00/rollback', payload: {}, status: 400, names: { field: 'model' } },
  // An identifier with a NUL byte names nothing: not found, and the answer says which.
  { route: 'POST /api/jobs/{kind}', method: 'POST', url: '/api/jobs/training%00', payload: {}, status: 404, names: { text: 'unknown job kind "training\u0000"' } },
  { route: 'GET /api/jobs/{id}', method: 'GET', url: '/api/jobs/backtest.x%00', status: 404, names: { text: 'no job "backtest.x\u0000"' } },
  { route: 'POST /api/jobs/{id}/cancel', method: 'POST', url: '/api/jobs/backtest.x%00/cancel', status: 404, names: { text: 'no job "backtest.x\u0000"' } },
  { route: 'POST /api/jobs/{id}/retry', method: 'POST', url: '/api/jobs/backtest.x%00/retry', status: 404, names: { text: 'no job "backtest.x\u0000"' } },
  { route: 'GET /api/schedules/{name}', method: 'GET', url: '/api/schedules/nightly%00', status: 404, names: { text: 'no schedule "nightly\u0000"' } },
  { route: 'POST /api/schedules/{name}/resume', method: 'POST', url: '/api/schedules/nightly%00/resume', status: 404, names: { text: 'no schedule "nightly\u0000"' } },
  { route: 'POST /api/schedules/{name}/trigger', method: 'POST', url: '/api/schedules/nightly%00/trigger', status: 404, names: { text: 'no schedule "nightly\u0000"' } },
  { route: 'GET /api/pipelines/{id}', method: 'GET', url: '/api/pipelines/x%00', status: 404, names: { text: 'no pipeline "x\u0000"' } },
];

let h: ApiHarness;
beforeAll(async () => {
  h = await startApi({ fleet });
});
afterAll(async () => {
  await h.close();
});

function send(row: { method: 'GET' | 'POST'; url: string; payload?: string | object }): Promise<LightMyRequestResponse> {
  const json = typeof row.payload === 'string' ? { 'content-type': 'application/json' } : {};
  return h.app.inject({ method: row.method, url: row.url, headers: { ...asOperator, ...json }, ...(row.payload === undefined ? {} : { payload: row.payload }) });
}

async function rowsInAllTables(): Promise<number> {
  const { rows } = await h.pool.query<{ n: string }>(`select ${TABLES.map((t) => `(select count(*) from ${t})`).join(' + ')} as n`);
  return Number(rows[0]!.n);
}

describe('bad input, route by route', () => {
  it('is a 4xx naming the field for every row, never a 5xx, and changes nothing', async () => {
    const [jobsBefore, rowsBefore] = [await countAllJobs(h), await rowsInAllTables()];
    const wrong: string[] = [];
    for (const row of ROWS) {
      const res = await send(row);
      const answer = res.json() as { error: string; message: string; details?: { path: string }[] };
      const named = 'field' in row.names ? (answer.details ?? []).some((d) => d.path === (row.names as { field: string }).field) : answer.message.includes(row.names.text);
      if (res.statusCode !== row.status || !named) wrong.push(`${row.route} ${row.url}: ${res.statusCode} ${res.body.slice(0, 200)}`);
    }
    expect(wrong).toEqual([]);
    expect({ jobsEnqueued: (await countAllJobs(h)) - jobsBefore, rowsWritten: (await rowsInAllTables()) - rowsBefore }).toEqual({ jobsEnqueued: 0, rowsWritten: 0 });
  });

  it('covers every route that takes a body, a query or an id', () => {
    const routes = new Set(ROWS.map((r) => r.route));
    expect([...routes].sort()).toEqual(
      [
        'POST /api/jobs/training', 'POST /api/jobs/backtest', 'POST /api/jobs/data-sync', 'POST /api/jobs/deploy-test', 'POST /api/jobs/{kind}',
        'GET /api/jobs', 'GET /api/jobs/{id}', 'POST /api/jobs/{id}/cancel', 'POST /api/jobs/{id}/retry',
        'GET /api/checkpoints', 'GET /api/checkpoints/feed', 'GET /api/checkpoints/{id}', 'POST /api/checkpoints/{id}/loaded', 'POST /api/checkpoints/{id}/promote',
        'POST /api/models/{model}/rollback',
        'GET /api/schedules/{name}', 'POST /api/schedules/{name}/pause', 'POST /api/schedules/{name}/resume', 'POST /api/schedules/{name}/trigger',
        'POST /api/pipelines/research', 'GET /api/pipelines/{id}',
        'GET /api/backtests', 'GET /api/backtests/summary',
      ].sort(),
    );
  });
});

describe('ids as long as their schemas allow', () => {
  const queue = `deploy-test-${LONG_MODEL}`;
  const longest = `${queue}.${'x'.repeat(MAX_JOB_ID_LENGTH - queue.length - 1)}`;

  it('a job id of the longest valid length reaches its routes, not a 414', async () => {
    expect(longest).toHaveLength(MAX_JOB_ID_LENGTH);
    await h.queues.get(queue)!.queue.add(
      'deploy-test',
      { kind: 'deploy-test', payload: { model: LONG_MODEL, service: 'fincoll', checks: { health: true, accuracy: true } }, trigger: { reason: 'api', by: 'test', at: new Date().toISOString() } },
      { jobId: longest },
    );
    const view = await send({ method: 'GET', url: `/api/jobs/${longest}` });
    expect(view.statusCode, view.body).toBe(200);
    expect(view.json()).toMatchObject({ id: longest, state: 'waiting' });
    const cancel = await send({ method: 'POST', url: `/api/jobs/${longest}/cancel` });
    expect(cancel.json()).toEqual({ id: longest, state: 'cancelled' });
    const gone = await send({ method: 'POST', url: `/api/jobs/${longest}/retry` });
    expect(gone.statusCode).toBe(404);
  });

  it('a model name of 63 characters reaches rollback (409: nothing to roll back to)', async () => {
    const res = await send({ method: 'POST', url: `/api/models/${LONG_MODEL}/rollback`, payload: {} });
    expect(res.statusCode, res.body).toBe(409);
  });

  it('a parameter longer than any valid one is a 414 in the service’s shape', async () => {
    const res = await send({ method: 'GET', url: `/api/jobs/${longest}x` });
    expect(res.statusCode).toBe(414);
    expect(Object.keys(res.json()).sort()).toEqual(['error', 'message']);
    expect(res.json()).toMatchObject({ error: 'uri_too_long' });
  });
});

describe('what the router refuses', () => {
  it.each([
    { what: 'a malformed percent-encoding (FST_ERR_BAD_URL)', method: 'GET', url: '/api/jobs/%E0%A4%A', status: 400, error: 'bad_request' },
    { what: 'an unknown route', method: 'GET', url: '/api/nothing-here', status: 404, error: 'not_found' },
    // Fastify answers a known path with another method as not found (fastify/fastify#862).
    { what: 'a method the route does not take', method: 'DELETE', url: '/api/jobs', status: 404, error: 'not_found' },
    { what: 'a method no route takes', method: 'PROPFIND', url: '/api/jobs', status: 404, error: 'not_found' },
  ] as const)('$what answers {error, message}', async ({ method, url, status, error }) => {
    const res = await h.app.inject({ method, url, headers: asOperator });
    expect(res.statusCode).toBe(status);
    expect(Object.keys(res.json()).sort()).toEqual(['error', 'message']);
    expect(res.json()).toMatchObject({ error });
  });
});
