// Named tokens with scopes: every route of the app against every scope (allowed, or 403 naming
// the scopes it needs), the tokens file and the CLI that makes its entries, and who-did-it
// records carrying the token's name.
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Authenticator, trackRouteAccess } from '../src/api/auth.js';
import { createCheckpointLifecycle } from '../src/checkpoints/lifecycle.js';
import { hashToken, loadTokensFile, parseTokensFile, SCOPES, allTokens, type Scope } from '../src/config/tokens.js';
import { problemsOf } from './helpers/config-problems.js';
import { asAlice, asEnqueuer, asLoadReporter, asOperator, asReader, startApi, type ApiHarness } from './helpers/api.js';
import { REPO_ROOT, testFleet, testFleetInput } from './helpers/fleet.js';
import { testLogger } from './helpers/logger.js';

const BIN = path.join(REPO_ROOT, 'bin/caelum-scheduler.js');
const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-auth-'));
const fleet = testFleet({
  models: { ...testFleetInput().models, 'model-a': { ...testFleetInput().models['model-a']!, checkpointDir: dir } },
  schedules: { nightly: { cron: '0 3 * * *', timezone: 'UTC', enqueue: { kind: 'training', model: 'model-a' } } },
});

let h: ApiHarness;
beforeAll(async () => {
  h = await startApi({ fleet });
});
afterAll(async () => {
  await h.close();
  rmSync(dir, { recursive: true, force: true });
});

/** One token per scope, each holding only that scope. */
const AS: Record<Scope, Record<string, string>> = { read: asReader, 'report-loads': asLoadReporter, enqueue: asEnqueuer, operate: asAlice };

/**
 * Which scopes may call each route: the policy of the issue, written out. A route the app has and
 * this table lacks fails the test, so a new route cannot ship without a decision here.
 */
const ANY: Scope[] = [...SCOPES];
const READ: Scope[] = ['read', 'enqueue', 'operate'];
const ENQUEUE: Scope[] = ['enqueue', 'operate'];
const OPERATE: Scope[] = ['operate'];
const EXPECTED: Record<string, 'public' | Scope[]> = {
  'GET /api/health': 'public',
  'GET /docs': 'public',
  'GET /metrics': 'public',
  'GET /api/auth/me': ANY,
  'POST /api/jobs/:kind': ENQUEUE,
  'GET /api/jobs': READ,
  'GET /api/jobs/:id': READ,
  'POST /api/jobs/:id/cancel': OPERATE,
  'POST /api/jobs/:id/retry': OPERATE,
  'GET /api/data-sync': READ,
  'GET /api/workers': READ,
  'POST /api/workers/:host/drain': OPERATE,
  'POST /api/workers/:host/undrain': OPERATE,
  'GET /api/checkpoints': READ,
  'GET /api/checkpoints/feed': ANY,
  'GET /api/checkpoints/:id': READ,
  'POST /api/checkpoints/:id/loaded': ['report-loads', 'operate'],
  'POST /api/checkpoints/:id/promote': OPERATE,
  'POST /api/models/:model/rollback': OPERATE,
  'POST /api/pipelines/research': ENQUEUE,
  'GET /api/pipelines/:id': READ,
  'GET /api/backtests': READ,
  'GET /api/backtests/summary': READ,
  'GET /api/system/health': READ,
  'GET /api/schedules': READ,
  'GET /api/schedules/:name': READ,
  'POST /api/schedules/:name/pause': OPERATE,
  'POST /api/schedules/:name/resume': OPERATE,
  'POST /api/schedules/:name/trigger': OPERATE,
  'GET /api/fleet': READ,
  'GET /api/failures': READ,
  // The console's own files: public, like a sign-in page; it calls the routes above with a token.
  'GET /ui': 'public',
  'GET /ui/': 'public',
  'GET /ui/:file': 'public',
  'GET /ui/vendor/:file': 'public',
};
/** Bull Board's own routes (its pages, assets and API): operate only. */
const BOARD = '/admin/queues';

function expectedFor(method: string, url: string): 'public' | Scope[] | undefined {
  if (url === BOARD || url.startsWith(`${BOARD}/`)) return OPERATE;
  return EXPECTED[`${method === 'HEAD' ? 'GET' : method} ${url}`];
}

/** A concrete URL for a route that names nothing that exists, so an allowed call changes nothing. */
const concrete = (url: string) =>
  url
    .replace(':kind', 'training')
    .replace(/:id\b/, '999999')
    .replace(/:(host|name|model)\b/, 'no-such-$1')
    .replace(/:[A-Za-z]+/g, 'x')
    .replace('*', 'x');

describe('every route against every scope', () => {
  it('has a decision for every route, and each token gets exactly what its scopes allow', async () => {
    const routes = h.app.routeAccess();
    expect(routes.length).toBeGreaterThan(30);
    const undecided = routes.filter((r) => expectedFor(r.method, r.url) === undefined).map((r) => `${r.method} ${r.url}`);
    expect(undecided, 'routes missing from EXPECTED in this test').toEqual([]);

    const wrong: string[] = [];
    for (const { method, url } of routes) {
      const expected = expectedFor(method, url)!;
      const target = concrete(url);
      const send = (headers: Record<string, string>) =>
        h.app.inject({ method: method as 'GET', url: target, headers, ...(['POST', 'PUT', 'PATCH'].includes(method) ? { payload: {} } : {}) });
      const anonymous = await send({});
      if (expected === 'public') {
        if ([401, 403].includes(anonymous.statusCode)) wrong.push(`${method} ${url}: public, but ${anonymous.statusCode} without a token`);
        continue;
      }
      if (anonymous.statusCode !== 401) wrong.push(`${method} ${url}: ${anonymous.statusCode} without a token, expected 401`);
      else if (method !== 'HEAD' && JSON.stringify(anonymous.json().required) !== JSON.stringify(expected)) {
        wrong.push(`${method} ${url}: the 401 names ${JSON.stringify(anonymous.json().required)}`);
      }
      for (const scope of SCOPES) {
        const res = await send(AS[scope]);
        const allowed = expected.includes(scope);
        if (allowed && [401, 403].includes(res.statusCode)) wrong.push(`${method} ${url} as ${scope}: ${res.statusCode}, expected it allowed`);
        if (!allowed && res.statusCode !== 403) wrong.push(`${method} ${url} as ${scope}: ${res.statusCode}, expected 403`);
        if (!allowed && res.statusCode === 403 && method !== 'HEAD') {
          const body = res.json();
          if (JSON.stringify(body.required) !== JSON.stringify(expected) || !body.message.includes(expected.join(', '))) {
            wrong.push(`${method} ${url} as ${scope}: the 403 body does not name the scopes it needs: ${res.body}`);
          }
        }
      }
    }
    expect(wrong).toEqual([]);
  });

  it('says in a 403 which scopes the route needs and which the token has', async () => {
    const res = await h.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asLoadReporter, payload: { model: 'model-a' } });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({
      error: 'forbidden',
      message: 'POST /api/jobs/:kind needs one of the scopes enqueue, operate; the token "fincoll" has report-loads',
      required: ['enqueue', 'operate'],
      token: 'fincoll',
      granted: ['report-loads'],
    });
    const none = await h.app.inject({ method: 'POST', url: '/api/jobs/training', headers: { authorization: 'Bearer not-a-token-of-this-api' }, payload: {} });
    expect(none.statusCode).toBe(401);
    expect(none.json()).toMatchObject({ error: 'unauthorized', required: ['enqueue', 'operate'] });
    expect(none.json().message).toMatch(/needs a valid bearer token .* with one of the scopes enqueue, operate/);
  });

  it('tells a token who it is and what it may do', async () => {
    const me = await h.app.inject({ method: 'GET', url: '/api/auth/me', headers: asEnqueuer });
    expect(me.json()).toEqual({ name: 'ci', principal: 'ci', scopes: ['read', 'enqueue'] });
    expect((await h.app.inject({ method: 'GET', url: '/api/auth/me', headers: asOperator })).json()).toEqual({ name: 'operator', principal: 'operator', scopes: [...SCOPES] });
  });

  it('documents in /docs the same scopes each route enforces', async () => {
    const doc = (await h.app.inject({ method: 'GET', url: '/docs' })).json() as { paths: Record<string, Record<string, { 'x-scopes': string[] }>> };
    const mismatched = Object.entries(doc.paths).flatMap(([p, ops]) =>
      Object.entries(ops).flatMap(([method, op]) => {
        const url = p.replace(/\{(\w+)\}/g, ':$1').replace(/^\/api\/jobs\/(training|backtest|data-sync|deploy-test)$/, '/api/jobs/:kind');
        const expected = expectedFor(method.toUpperCase(), url);
        const documented = op['x-scopes'].length === 0 ? 'public' : op['x-scopes'];
        return JSON.stringify(documented) === JSON.stringify(expected) ? [] : [`${method} ${p}: documents ${JSON.stringify(documented)}, enforces ${JSON.stringify(expected)}`];
      }),
    );
    expect(mismatched).toEqual([]);
    expect(Object.keys(doc.paths).length).toBeGreaterThan(25);
  });

  it('refuses to start an app with a route that declares no access', async () => {
    const app = Fastify();
    trackRouteAccess(app);
    app.get('/declared', { config: { access: 'read' } }, async () => 'ok');
    app.get('/forgotten', async () => 'oops');
    await expect(app.ready()).rejects.toThrow(/routes without a declared access .*: GET \/forgotten/);
    await app.close();
  });
});

describe('who did it: the token name in every record of a change', () => {
  it('records the name on job triggers, cancels, drains, schedule pauses and triggers, checkpoint events and loads', async () => {
    const enqueued = await h.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asEnqueuer, payload: { model: 'model-a' } });
    expect(enqueued.statusCode).toBe(201);
    const id = enqueued.json().id as string;
    const cancel = await h.app.inject({ method: 'POST', url: `/api/jobs/${id}/cancel`, headers: asAlice });
    expect(cancel.json()).toEqual({ id, state: 'cancelled' });
    const waiting = await h.app.inject({ method: 'POST', url: '/api/jobs/training', headers: asEnqueuer, payload: { model: 'model-b' } });
    const view = await h.app.inject({ method: 'GET', url: `/api/jobs/${waiting.json().id}`, headers: asEnqueuer });
    expect(view.json().trigger).toMatchObject({ reason: 'api', by: 'ci' });

    const drained = await h.app.inject({ method: 'POST', url: '/api/workers/host-a/drain', headers: asAlice, payload: { reason: 'rack move' } });
    expect(drained.json().drained).toMatchObject({ by: 'ops-alice' });
    await h.app.inject({ method: 'POST', url: '/api/workers/host-a/undrain', headers: asAlice, payload: {} });

    const paused = await h.app.inject({ method: 'POST', url: '/api/schedules/nightly/pause', headers: asAlice, payload: { reason: 'maintenance' } });
    expect(paused.json().paused).toMatchObject({ by: 'api (ops-alice)' });
    const triggered = await h.app.inject({ method: 'POST', url: '/api/schedules/nightly/trigger', headers: asAlice, payload: { force: true } });
    expect(triggered.statusCode).toBe(201);
    const schedule = await h.app.inject({ method: 'GET', url: '/api/schedules/nightly', headers: asReader });
    expect(schedule.json().history[0]).toMatchObject({ actor: 'api (ops-alice)', manual: true });

    // A validated checkpoint (its file in the model's folder), promoted, then reported loaded.
    const content = 'weights of the scopes test';
    const file = path.join(dir, 'scopes.pt');
    writeFileSync(file, content);
    const { checkpoint } = await h.registry.checkpoints.register(
      { model: 'model-a', versionMajor: 1, path: file, sizeBytes: content.length, sha256: createHash('sha256').update(content).digest('hex'), metrics: {}, trainingJobId: 'job-scopes-1', trigger: { reason: 'api' } },
      'test',
    );
    const lifecycle = createCheckpointLifecycle({ registry: h.registry, fleet, queues: h.queues, redis: h.redis, prefix: h.prefix, logger: testLogger });
    await lifecycle.startValidation(checkpoint.id, 'test');
    await lifecycle.decide(checkpoint.id, { passed: true, metrics: {}, reasons: [], actor: 'test' });
    const promoted = await h.app.inject({ method: 'POST', url: `/api/checkpoints/${checkpoint.id}/promote`, headers: asAlice, payload: {} });
    expect(promoted.json().checkpoint.status).toBe('promoted');
    const loaded = await h.app.inject({ method: 'POST', url: `/api/checkpoints/${checkpoint.id}/loaded`, headers: asLoadReporter, payload: { instance: 'fincoll-1' } });
    expect(loaded.statusCode).toBe(200);
    const detail = (await h.app.inject({ method: 'GET', url: `/api/checkpoints/${checkpoint.id}`, headers: asReader })).json();
    expect(detail.history.at(-1)).toMatchObject({ toStatus: 'promoted', actor: 'api (ops-alice)' });
    expect(detail.loads).toEqual([{ instance: 'fincoll-1', details: null, at: expect.any(String), by: 'fincoll' }]);
  });
});

describe('the tokens file', () => {
  const entry = (over: object = {}) => ({ name: 'ci', scopes: ['enqueue'] as Scope[], hash: hashToken('x'.repeat(32)), ...over });
  const problems = (text: string) => problemsOf(() => parseTokensFile(text, 'tokens.yaml'));

  it('reads YAML and JSON alike', () => {
    const yaml = `tokens:\n  - name: fincoll\n    scopes: [report-loads]\n    hash: ${hashToken('f'.repeat(32))}\n`;
    expect(parseTokensFile(yaml, 'tokens.yaml')).toEqual([{ name: 'fincoll', scopes: ['report-loads'], hash: hashToken('f'.repeat(32)) }]);
    expect(parseTokensFile(JSON.stringify({ tokens: [entry()] }), 'tokens.json')).toEqual([entry()]);
  });

  it('names each bad field and refuses a name or a token used twice, in the file or beside the environment', () => {
    expect(problems(JSON.stringify({ tokens: [entry({ scopes: ['write'] })] }))).toEqual(['tokens.0.scopes.0: must be one of read, report-loads, enqueue, operate']);
    expect(problems(JSON.stringify({ tokens: [entry({ hash: 'x'.repeat(32) })] }))[0]).toMatch(/^tokens\.0\.hash: must be sha256:<64 lower-case hex digits>/);
    expect(problems(JSON.stringify({ tokens: [entry({ scopes: [] })] }))).toEqual(['tokens.0.scopes: name at least one scope']);
    expect(problems(JSON.stringify({ tokens: [entry({ token: 'plain' })] }))).toEqual(['tokens.0.token: unknown field']);
    expect(problems(JSON.stringify({ tokens: [entry(), entry({ hash: hashToken('y'.repeat(32)) })] }))[0]).toMatch(/^tokens\.1\.name: "ci" is used twice/);
    expect(problems(JSON.stringify({ tokens: [entry(), entry({ name: 'ci-2' })] }))).toEqual(['tokens.1.hash: the same token as tokens.0 ("ci")']);
    expect(problems('tokens: [unclosed')[0]).toMatch(/^: not YAML or JSON/);
    const operator = 'o'.repeat(32);
    expect(() => allTokens({ apiToken: operator }, [entry({ name: 'operator' })], 'tokens.yaml')).toThrow(/tokens\.0\.name: "operator" names the token of CAELUM_API_TOKEN/);
    expect(() => allTokens({ apiToken: operator }, [entry({ hash: hashToken(operator) })], 'tokens.yaml')).toThrow(/tokens\.0\.hash: the same token as CAELUM_API_TOKEN/);
  });

  it('accepts what `token new` prints, and `token hash` digests a token from standard input', async () => {
    const made = await execa('node', [BIN, 'token', 'new', '--name', 'ci-nightly', '--scope', 'enqueue'], { cwd: REPO_ROOT, reject: false });
    expect(made.exitCode).toBe(0);
    const [, token] = /^token for ci-nightly \(shown once; give it to its holder\):\n(cae_[A-Za-z0-9_-]{43})\n/.exec(made.stdout) ?? [];
    expect(token).toBeDefined();
    const file = path.join(dir, 'tokens.yaml');
    writeFileSync(file, `tokens:\n${made.stdout.slice(made.stdout.indexOf('  - name:'))}`);
    const entries = loadTokensFile(file);
    expect(entries).toEqual([{ name: 'ci-nightly', scopes: ['enqueue'], hash: hashToken(token!) }]);
    expect(new Authenticator(entries).principalOf(token)).toEqual({ name: 'ci-nightly', scopes: ['read', 'enqueue'] });
    expect(new Authenticator(entries).principalOf(`${token}x`)).toBeUndefined();

    const hashed = await execa('node', [BIN, 'token', 'hash'], { cwd: REPO_ROOT, input: `${token}\n`, reject: false });
    expect([hashed.exitCode, hashed.stdout]).toEqual([0, hashToken(token!)]);
    const refused = await Promise.all([
      execa('node', [BIN, 'token', 'hash'], { cwd: REPO_ROOT, input: 'short\n', reject: false }),
      execa('node', [BIN, 'token', 'new', '--name', 'x', '--scope', 'admin'], { cwd: REPO_ROOT, reject: false }),
      execa('node', [BIN, 'token', 'new', '--scope', 'read'], { cwd: REPO_ROOT, reject: false }),
    ]);
    expect(refused.map((r) => [r.exitCode, r.stderr])).toEqual([
      [2, 'caelum-scheduler: the token on standard input must be at least 16 characters'],
      [2, 'caelum-scheduler: --scope: unknown scope "admin"; known: read, report-loads, enqueue, operate'],
      [2, 'caelum-scheduler: --name: say who holds the token (1-64 letters, digits, ".", "_" or "-", starting with a letter or digit)'],
    ]);
  });
});
