import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RequestLogLevel } from '../src/api/request-log.js';
import { asOperator, asReader, OPERATOR, startApi, type ApiHarness } from './helpers/api.js';
import { DEAD_DATABASE_URL, DEAD_REDIS_URL } from './helpers/servers.js';

describe('GET /api/health', () => {
  it('is 200 with both servers reachable, and needs no token', async () => {
    const h = await startApi();
    try {
      const res = await h.app.inject({ method: 'GET', url: '/api/health' });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({ status: 'ok', redis: { ok: true }, postgres: { ok: true } });
    } finally {
      await h.close();
    }
  });

  it('is 503 naming Postgres when Postgres is down', async () => {
    const h = await startApi({ databaseUrl: DEAD_DATABASE_URL });
    try {
      const res = await h.app.inject({ method: 'GET', url: '/api/health' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ status: 'down', down: ['postgres'], redis: { ok: true }, postgres: { ok: false } });
    } finally {
      await h.close();
    }
  });

  it('is 503 naming Redis when Redis is down, and enqueueing then fails fast with 503', async () => {
    const h = await startApi({ redisUrl: DEAD_REDIS_URL });
    try {
      const started = Date.now();
      const res = await h.app.inject({ method: 'GET', url: '/api/health' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toMatchObject({ down: ['redis'], postgres: { ok: true } });
      const enq = await h.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'model-a' } });
      expect(enq.statusCode).toBe(503);
      expect(enq.json()).toMatchObject({ error: 'unavailable', message: expect.stringMatching(/Redis/) });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await h.close();
    }
  });
});

describe('Bull Board at /admin/queues', () => {
  let h: ApiHarness;
  beforeAll(async () => {
    h = await startApi();
  });
  afterAll(async () => {
    await h.close();
  });

  it('asks a browser for credentials, and refuses the read token', async () => {
    const anon = await h.app.inject({ method: 'GET', url: '/admin/queues' });
    expect(anon.statusCode).toBe(401);
    expect(anon.headers['www-authenticate']).toMatch(/^Basic/);
    const reader = await h.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: asReader });
    expect(reader.statusCode).toBe(403);
  });

  it('serves the page and every queue to the operator (basic auth)', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`ops:${OPERATOR}`).toString('base64')}` };
    const page = await h.app.inject({ method: 'GET', url: '/admin/queues', headers: basic });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const api = await h.app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: basic });
    expect(api.statusCode).toBe(200);
    const names = (api.json() as { queues: { name: string }[] }).queues.map((q) => q.name).sort();
    expect(names).toEqual(h.queues.all().map((e) => e.spec.name).sort());
    expect(names).toEqual(expect.arrayContaining(['backtest', 'data-sync', 'training-model-a', 'deploy-test-model-a']));
  });

  // The page's scripts come from @fastify/static, whose content-disposition dependency is pinned
  // (package.json overrides) to a release that supports Node 20: without them the board is blank.
  it('serves the static files the page links to', async () => {
    const basic = { authorization: `Basic ${Buffer.from(`ops:${OPERATOR}`).toString('base64')}` };
    const page = await h.app.inject({ method: 'GET', url: '/admin/queues', headers: basic });
    const src = /<script[^>]+src="([^"]+\.js)"/.exec(page.body)?.[1];
    expect(src).toBeDefined();
    const script = new URL(src!, 'http://board/admin/queues/').pathname;
    expect(script).toMatch(/^\/admin\/queues\/static\//);
    const res = await h.app.inject({ method: 'GET', url: script, headers: basic });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/javascript/);
    expect(res.body.length).toBeGreaterThan(1000);
  });

  // A browser sends cookies to any page, so a cookie must never stand in for the token. The
  // cookies go through light-my-request's Cookie encoding (the cookie package, pinned likewise).
  it('takes no credentials from cookies', async () => {
    const cookies = { token: OPERATOR, authorization: `Bearer ${OPERATOR}` };
    const board = await h.app.inject({ method: 'GET', url: '/admin/queues/api/queues', cookies });
    expect(board.statusCode).toBe(401);
    const api = await h.app.inject({ method: 'GET', url: '/api/jobs', cookies });
    expect(api.statusCode).toBe(401);
    const both = await h.app.inject({ method: 'GET', url: '/api/jobs', cookies, headers: asReader });
    expect(both.statusCode).toBe(200);
  });
});

describe('request logs', () => {
  /** The entries an app logs at info for a good, a refused and a misdirected request. */
  async function logsOfThreeRequests(requestLogLevel: RequestLogLevel) {
    const entries: Record<string, unknown>[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => entries.push(JSON.parse(line) as Record<string, unknown>) });
    const h = await startApi({ logger, requestLogLevel });
    try {
      entries.length = 0;
      expect((await h.app.inject({ method: 'GET', url: '/api/jobs', headers: asReader })).statusCode).toBe(200);
      expect((await h.app.inject({ method: 'POST', url: '/api/jobs/training', payload: { model: 'model-a' } })).statusCode).toBe(401);
      expect((await h.app.inject({ method: 'GET', url: '/no-such-page' })).statusCode).toBe(404);
      return [...entries];
    } finally {
      await h.close();
    }
  }

  it('are one line per request at info for the api', async () => {
    const entries = await logsOfThreeRequests('info');
    expect(entries).toEqual([
      expect.objectContaining({ msg: 'request', method: 'GET', url: '/api/jobs', status: 200, ms: expect.any(Number) }),
      expect.objectContaining({ msg: 'request', method: 'POST', url: '/api/jobs/training', status: 401 }),
      expect.objectContaining({ msg: 'request', method: 'GET', url: '/no-such-page', status: 404 }),
    ]);
  });

  it('are below info for dev and demo, so their banner stays in view', async () => {
    expect(await logsOfThreeRequests('debug')).toEqual([]);
  });
});

describe('GET /docs', () => {
  it('serves an OpenAPI document generated from the schemas the routes validate with', async () => {
    const h = await startApi();
    try {
      const res = await h.app.inject({ method: 'GET', url: '/docs' });
      expect(res.statusCode).toBe(200);
      const doc = res.json();
      expect(doc.openapi).toBe('3.0.3');
      const training = doc.paths['/api/jobs/training'].post.requestBody.content['application/json'].schema;
      expect(training.required).toEqual(['model']);
      expect(training.additionalProperties).toBe(false);
      const feed = doc.paths['/api/checkpoints/feed'].get.parameters;
      expect(feed.find((p: { name: string }) => p.name === 'wait').schema.maximum).toBe(30);
      const entry = doc.paths['/api/checkpoints/feed'].get.responses['200'].content['application/json'].schema.properties.checkpoints.items;
      expect(entry.properties.validatedAt).toMatchObject({ type: 'string', format: 'date-time' });
      // The document and the server agree: a body the schema forbids is refused.
      const extra = await h.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asOperator, payload: { model: 'model-a', shell: 'x' } });
      expect(extra.statusCode).toBe(400);
    } finally {
      await h.close();
    }
  });
});
