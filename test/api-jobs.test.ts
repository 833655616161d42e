import { UnrecoverableError } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BODY_LIMIT_BYTES } from '../src/api/app.js';
import { asOperator, asReader, countAllJobs, startApi, type ApiHarness } from './helpers/api.js';
import { takeJob as takeJobOf } from './helpers/take-job.js';

let h: ApiHarness;
beforeAll(async () => {
  h = await startApi();
});
afterAll(async () => {
  await h.close();
});

const post = (url: string, payload: unknown, headers: Record<string, string> = asOperator) =>
  h.app.inject({ method: 'POST', url, payload: payload as object, headers });
const get = (url: string, headers: Record<string, string> = asReader) => h.app.inject({ method: 'GET', url, headers });

const takeJob = (queue: string) => takeJobOf(h.prefix, queue);

describe('POST /api/jobs/{kind}', () => {
  it.each([
    ['training', { model: 'model-a', params: { epochs: 3, lr: 0.001 } }, 'training-model-a'],
    ['backtest', { model: 'model-b', symbols: ['AAPL', 'MSFT'], timeframe: '1d' }, 'backtest'],
    ['data-sync', { symbol: 'AAPL', timeframe: '1h' }, 'data-sync'],
    ['deploy-test', { model: 'model-b' }, 'deploy-test-model-b'],
  ])('enqueues a %s job into its queue, where GET shows it waiting', async (kind, body, queue) => {
    const res = await post(`/api/jobs/${kind}`, body);
    expect(res.statusCode).toBe(201);
    const created = res.json();
    expect(created).toMatchObject({ kind, queue, state: 'waiting' });
    expect(created.id.startsWith(`${queue}.`)).toBe(true);

    const view = await get(`/api/jobs/${created.id}`);
    expect(view.statusCode).toBe(200);
    expect(view.json()).toMatchObject({ id: created.id, kind, queue, state: 'waiting', attempts: { made: 0 } });
    expect(view.json().trigger).toMatchObject({ reason: 'api', by: 'operator' });
    expect(await h.queues.get(queue)!.queue.getJob(created.id)).toBeDefined();
  });

  it("gives each job its command's retries and the bounded retention of completed and failed jobs and log lines", async () => {
    const res = await post('/api/jobs/training', { model: 'model-a' });
    const entry = h.queues.get('training-model-a')!;
    const job = (await entry.queue.getJob(res.json().id))!;
    const day = 24 * 3600;
    expect(job.opts).toMatchObject({
      attempts: entry.spec.command.attempts,
      backoff: { type: 'exponential', delay: entry.spec.command.backoffSeconds * 1000 },
      keepLogs: 500,
      removeOnComplete: { age: 7 * day, count: 2_000 },
      removeOnFail: { age: 30 * day, count: 5_000 },
    });
  });

  it('fills payload defaults and keeps params as data', async () => {
    const res = await post('/api/jobs/data-sync', { symbol: 'NVDA' });
    const view = (await get(`/api/jobs/${res.json().id}`)).json();
    expect(view.payload).toEqual({ symbol: 'NVDA', timeframe: '1d', source: 'default' });
  });
});

describe('bad requests change nothing', () => {
  const cases: [string, string, unknown, Record<string, string> | undefined, number, RegExp][] = [
    ['a body that fails its schema', '/api/jobs/backtest', { model: 'model-a', symbols: [] }, asOperator, 400, /symbols/],
    ['a wrong type', '/api/jobs/training', { model: 'model-a', params: { epochs: [1] } }, asOperator, 400, /params\.epochs/],
    ['an unknown field', '/api/jobs/training', { model: 'model-a', command: ['rm', '-rf'] }, asOperator, 400, /command/],
    ['an unknown model', '/api/jobs/training', { model: 'gpt-4' }, asOperator, 400, /unknown model "gpt-4"/],
    ['an unknown kind', '/api/jobs/mining', { model: 'model-a' }, asOperator, 404, /unknown job kind "mining"/],
    ['no token', '/api/jobs/training', { model: 'model-a' }, {}, 401, /bearer token/],
    ['a wrong token', '/api/jobs/training', { model: 'model-a' }, { authorization: 'Bearer nope-nope-nope-nope' }, 401, /bearer token/],
    ['the read token on a write route', '/api/jobs/training', { model: 'model-a' }, asReader, 403, /needs one of the scopes enqueue, operate; the token "reader" has read/],
  ];

  it.each(cases)('%s', async (_name, url, body, headers, status, message) => {
    const before = await countAllJobs(h);
    const res = await post(url, body, headers ?? {});
    expect(res.statusCode).toBe(status);
    const err = res.json();
    expect(Object.keys(err).sort()).toEqual(expect.arrayContaining(['error', 'message']));
    const text = [err.message, ...(err.details ?? []).map((d: { path: string; message: string }) => `${d.path}: ${d.message}`)];
    expect(text.join('\n')).toMatch(message);
    expect(await countAllJobs(h)).toBe(before);
  });

  it('names the field in details', async () => {
    const res = await post('/api/jobs/data-sync', { symbol: 'aapl' });
    expect(res.json()).toMatchObject({ error: 'bad_request', details: [{ path: 'symbol' }] });
  });

  it('refuses a body over the size limit and JSON that does not parse', async () => {
    const before = await countAllJobs(h);
    const big = await post('/api/jobs/training', { model: 'model-a', params: { x: 'y'.repeat(BODY_LIMIT_BYTES) } });
    expect(big.statusCode).toBe(413);
    const broken = await h.app.inject({
      method: 'POST',
      url: '/api/jobs/training',
      headers: { ...asOperator, 'content-type': 'application/json' },
      payload: '{"model":',
    });
    expect(broken.statusCode).toBe(400);
    expect(broken.json().error).toBe('bad_request');
    expect(await countAllJobs(h)).toBe(before);
  });
});

describe('GET /api/jobs', () => {
  it('lists a kind newest first, by state, a page at a time', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post('/api/jobs/training', { model: 'model-b', params: { i } })).json().id);
    const page1 = (await get('/api/jobs?kind=training&state=waiting&limit=2')).json();
    const page2 = (await get('/api/jobs?kind=training&state=waiting&limit=2&offset=2')).json();
    expect(page1.jobs.map((j: { id: string }) => j.id)).toEqual([ids[4], ids[3]]);
    expect(page2.jobs.map((j: { id: string }) => j.id)).toEqual([ids[2], ids[1]]);
    expect(page1.total).toBeGreaterThanOrEqual(5);
    expect(page1.jobs.every((j: { state: string; kind: string }) => j.state === 'waiting' && j.kind === 'training')).toBe(true);
  });

  it('refuses a bad filter', async () => {
    const res = await get('/api/jobs?state=sleeping');
    expect(res.statusCode).toBe(400);
    expect(res.json().details[0].path).toBe('state');
  });

  it('answers 404 for an unknown job, and for a string that is no job id', async () => {
    expect((await get('/api/jobs/training-model-a.does-not-exist')).statusCode).toBe(404);
    expect((await get('/api/jobs/..%2F..%2Fetc')).statusCode).toBe(404);
  });
});

describe('cancel and retry', () => {
  // Its own queues, so the job a test takes is the one it enqueued.
  let main: ApiHarness;
  beforeAll(async () => {
    main = h;
    h = await startApi();
  });
  afterAll(async () => {
    await h.close();
    h = main;
  });

  it('removes a waiting job', async () => {
    const { id } = (await post('/api/jobs/backtest', { model: 'model-a', symbols: ['SPY'] })).json();
    const res = await post(`/api/jobs/${id}/cancel`, undefined);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ id, state: 'cancelled' });
    expect((await get(`/api/jobs/${id}`)).statusCode).toBe(404);
  });

  it('marks an active job so its worker can end it, and refuses a finished one', async () => {
    const { id } = (await post('/api/jobs/training', { model: 'model-a' })).json();
    const { job, token, worker } = await takeJob('training-model-a');
    try {
      expect(job.id).toBe(id);
      const res = await post(`/api/jobs/${id}/cancel`, undefined);
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ id, state: 'cancelling' });
      const view = (await get(`/api/jobs/${id}`)).json();
      expect(view.state).toBe('active');
      expect(view.cancelRequested).toMatchObject({ by: 'operator' });

      await job.moveToFailed(new UnrecoverableError('cancelled'), token, false);
      const again = await post(`/api/jobs/${id}/cancel`, undefined);
      expect(again.statusCode).toBe(409);
    } finally {
      await worker.close();
    }
  });

  it('retries a failed job, and refuses to retry one that has not failed', async () => {
    const { id } = (await post('/api/jobs/data-sync', { symbol: 'QQQ' })).json();
    expect((await post(`/api/jobs/${id}/retry`, undefined)).statusCode).toBe(409);
    const { job, token, worker } = await takeJob('data-sync');
    try {
      // Unrecoverable: fail for good rather than go back for another attempt.
      await job.moveToFailed(new UnrecoverableError('source timed out'), token, false);
      const failed = (await get(`/api/jobs/${id}`)).json();
      expect(failed).toMatchObject({ state: 'failed', failureReason: 'source timed out' });
      const res = await post(`/api/jobs/${id}/retry`, undefined);
      expect(res.statusCode).toBe(200);
      expect((await get(`/api/jobs/${id}`)).json().state).toBe('waiting');
    } finally {
      await worker.close();
    }
  });

  it('needs the operate scope', async () => {
    const { id } = (await post('/api/jobs/data-sync', { symbol: 'IWM' })).json();
    expect((await post(`/api/jobs/${id}/cancel`, undefined, asReader)).statusCode).toBe(403);
    expect((await post(`/api/jobs/${id}/retry`, undefined, {})).statusCode).toBe(401);
    expect((await get(`/api/jobs/${id}`)).json().state).toBe('waiting');
  });
});
