// The console in a real browser: Debian's Chromium driven by playwright-core against the real API
// on a real port, with real host workers running the example trainer, validator and FinColl stub.
// It signs in, watches a training's progress bar advance, sees its checkpoint validated, promotes
// it with the operator token, and is refused with the read token. Every page is photographed at
// 1280x800 and at a phone's width into artifacts/screenshots/ (kept by CI, ignored by git).
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseFleet } from '../src/config/load-fleet.js';
import type { RunningWorkers } from '../src/workers/start-workers.js';
import { asOperator, OPERATOR, READER, startApi, type ApiHarness } from './helpers/api.js';
import { REPO_ROOT, stubDeployTest } from './helpers/fleet.js';
import { waitFor } from './helpers/wait.js';
import { startTestWorkers } from './helpers/workers.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = path.join(REPO_ROOT, 'artifacts/screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'caelum-console-'));
const gpu = (index: number) => ({ index, name: 'RTX 3080', memoryMiB: 10240 });
const fleet = parseFleet(
  {
    hosts: { 'gpu-62': { gpus: [gpu(0), gpu(1)], cpuSlots: 2 }, 'gpu-22': { gpus: [gpu(0)], cpuSlots: 1 } },
    pools: { llm1: ['gpu-62'], llm3: ['gpu-22'], fleet: ['gpu-62'] },
    models: {
      'llm1-tech': {
        pool: 'llm1',
        train: { command: ['node', 'examples/trainer.mjs'], timeoutSeconds: 120, attempts: 1 },
        validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60, attempts: 1 },
        ...stubDeployTest,
        checkpointDir: path.join(sandbox, 'llm1-tech'),
        symbols: ['AAPL', 'MSFT'],
        freshData: { timeframe: '1d', maxAgeHours: 30 },
      },
      // Its pool's host has no worker in this test: its data is never synced, so it is stale.
      'llm3-yieldmax': {
        pool: 'llm3',
        train: { command: ['node', 'examples/trainer.mjs'], timeoutSeconds: 60 },
        validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 60 },
        checkpointDir: path.join(sandbox, 'llm3-yieldmax'),
        symbols: ['TSLY'],
        freshData: { timeframe: '1d', maxAgeHours: 30 },
      },
    },
    backtest: { pool: 'fleet', command: ['node', 'examples/backtester.mjs'], timeoutSeconds: 60 },
    dataSync: { pool: 'fleet', command: ['node', 'test/fixtures/failing-syncer.mjs', '--fail', 'BAD'], timeoutSeconds: 60, attempts: 1 },
    schedules: {
      'llm1-tech-daily': { cron: '0 2 * * 2-6', timezone: 'America/New_York', enqueue: { kind: 'training', model: 'llm1-tech' } },
      'market-data-daily': { cron: '30 17 * * 1-5', timezone: 'America/New_York', enqueue: { kind: 'data-sync', symbols: ['AAPL', 'MSFT'], timeframe: '1d' } },
      'llm3-yieldmax-on-demand': { timezone: 'America/New_York', enqueue: { kind: 'training', model: 'llm3-yieldmax' } },
    },
  },
  '(console test)',
  REPO_ROOT,
);

let api: ApiHarness;
let base: string;
let workers: RunningWorkers;
let browser: BrowserContext;
const profile = mkdtempSync(path.join(os.tmpdir(), 'caelum-chromium-'));

const post = async (url: string, payload: object = {}) => {
  const res = await api.app.inject({ method: 'POST', url, payload, headers: asOperator });
  expect(res.statusCode, `${url}: ${res.body}`).toBeLessThan(300);
  return res.json();
};
const read = async (url: string) => (await api.app.inject({ method: 'GET', url, headers: asOperator })).json();
const jobState = async (id: string) => (await read(`/api/jobs/${id}`)).state as string;

/** Trains llm1-tech through the API and waits for its checkpoint's verdict; answers the checkpoint. */
async function trainToVerdict(params: object): Promise<{ id: number; label: string; status: string }> {
  const { id } = await post('/api/jobs/training', { model: 'llm1-tech', params });
  await waitFor(`training ${id} to complete`, async () => (await jobState(id)) === 'completed', { timeoutMs: 60_000, intervalMs: 200 });
  return waitFor(
    `the checkpoint of ${id} to be judged`,
    async () => {
      const { checkpoints } = await read('/api/checkpoints?model=llm1-tech');
      const c = checkpoints.find((x: { trainingJobId: string }) => x.trainingJobId === id);
      return c && ['validated', 'rejected'].includes(c.status) ? c : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 200 },
  );
}

/** A full-page screenshot at 1280x800 and at a phone's width; the page is left at 1280x800. */
async function shoot(page: Page, name: string): Promise<void> {
  for (const [size, viewport] of [['desktop', DESKTOP], ['phone', PHONE]] as const) {
    await page.setViewportSize(viewport);
    await page.evaluate('window.scrollTo(0, 0)');
    // Two frames: the layout of the new width is painted. (A string: this file is compiled without the DOM's types.)
    await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve)))');
    await page.screenshot({ path: path.join(SHOTS, `${name}-${size}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
}

/** A page that records what went wrong in it: uncaught errors and failed requests other than the API's answers. */
async function openPage(problems: string[]): Promise<Page> {
  const page = await browser.newPage();
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && !/status of (401|403|409)/.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  return page;
}

async function signIn(page: Page, token: string): Promise<void> {
  await page.goto(`${base}/ui`);
  await page.getByLabel('API token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByText('Signed in as').waitFor();
}

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium (.ci/run does this)`);
  }
  mkdirSync(SHOTS, { recursive: true });
  api = await startApi({ fleet });
  base = await api.app.listen({ port: 0, host: '127.0.0.1' });
  workers = await startTestWorkers(fleet, api.prefix, api.pool, ['gpu-62'], {}, undefined, { dataDir: path.join(sandbox, 'data') });
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    viewport: DESKTOP,
    // Bull Board asks for basic auth (any user name, the operator token); the API's own 401s ask for a bearer token.
    httpCredentials: { username: 'operator', password: OPERATOR },
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await workers?.close();
  await api?.close();
  rmSync(profile, { recursive: true, force: true });
  rmSync(sandbox, { recursive: true, force: true });
});

describe('the console in Chromium', () => {
  it('signs in, follows a training to validation, promotes it with the operator token and is refused with the read token', async () => {
    // What the other pages show: a live checkpoint FinColl has loaded, a sync that failed for
    // good, and a host drained by an operator.
    const first = await trainToVerdict({ epochs: 2, epoch_ms: 100 });
    expect(first.status).toBe('validated');
    await post(`/api/checkpoints/${first.id}/promote`, { reason: 'first model of the fleet' });
    await post(`/api/checkpoints/${first.id}/loaded`, { instance: 'fincoll-1' });
    const bad = await post('/api/jobs/data-sync', { symbol: 'BAD', timeframe: '1d' });
    await waitFor('the BAD sync to fail', async () => (await jobState(bad.id)) === 'failed', { timeoutMs: 30_000, intervalMs: 200 });
    await post('/api/workers/gpu-22/drain', { reason: 'disk swap' });

    const problems: string[] = [];
    const page = await openPage(problems);
    await page.goto(`${base}/ui`);
    await page.getByLabel('API token').waitFor();
    await shoot(page, '0-sign-in');
    await page.getByLabel('API token').fill('not-a-token-of-ours');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByText('That token was refused.').waitFor();

    await signIn(page, OPERATOR);
    await page.getByRole('heading', { name: 'Fleet' }).waitFor();

    // Watch the progress bar of a running training advance, without reloading.
    const { id: jobId } = await post('/api/jobs/training', { model: 'llm1-tech', params: { epochs: 8, epoch_ms: 1200 } });
    const bar = page.getByRole('progressbar', { name: `progress of ${jobId}` });
    await bar.waitFor({ timeout: 30_000 });
    const value = async () => Number(await bar.getAttribute('value'));
    const seen = await waitFor('the progress bar to show some progress', async () => ((await value()) > 0 ? value() : undefined), { timeoutMs: 30_000, intervalMs: 100 });
    await waitFor('the progress bar to advance', async () => (await value()) > seen, { timeoutMs: 30_000, intervalMs: 100 });
    await expect(page.locator('.running-job', { hasText: jobId }).textContent()).resolves.toMatch(/epoch \d\/8.*ETA/);
    await expect(page.locator('#host-gpu-22').textContent()).resolves.toContain('down');
    await shoot(page, '1-fleet');

    // Its checkpoint appears and becomes validated on the Models page, without reloading.
    await page.getByRole('link', { name: 'Models' }).click();
    const checkpoint = await waitFor(
      'the new checkpoint to be registered',
      async () => (await read('/api/checkpoints?model=llm1-tech')).checkpoints.find((c: { trainingJobId: string }) => c.trainingJobId === jobId),
      { timeoutMs: 60_000, intervalMs: 200 },
    );
    const row = page.locator('table.checkpoints tr', { hasText: checkpoint.label });
    await row.getByText('validated', { exact: true }).waitFor({ timeout: 60_000 });
    await page.getByRole('link', { name: checkpoint.label }).first().click();
    await page.getByRole('heading', { name: `${checkpoint.label} validated` }).waitFor();
    await page.getByText('Health-check log').first().click();
    await shoot(page, '2-models');

    // The training job's link opens its page in Bull Board.
    const [board] = await Promise.all([browser.waitForEvent('page'), page.locator('.detail').getByRole('link', { name: `Bull Board page of job ${jobId}` }).click()]);
    await board.waitForLoadState();
    expect(new URL(board.url()).pathname).toBe(`/admin/queues/queue/training-llm1-tech/${jobId}`);
    await board.getByText(jobId).first().waitFor();
    await board.close();

    // Promote it, with a reason, through the confirmation.
    await page.getByRole('button', { name: `Promote ${checkpoint.label}` }).click();
    const dialog = page.getByRole('dialog', { name: `Promote ${checkpoint.label}` });
    await dialog.getByLabel('Reason (optional)').fill('beats the live one on validation');
    await dialog.getByRole('button', { name: 'Promote' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('.live', { hasText: checkpoint.label }).waitFor();
    const promoted = await read(`/api/checkpoints/${checkpoint.id}`);
    expect(promoted.checkpoint.status).toBe('promoted');
    expect(promoted.history.at(-1)).toMatchObject({ toStatus: 'promoted', actor: 'api (operator)', reason: 'beats the live one on validation' });
    expect((await read(`/api/checkpoints/${first.id}`)).checkpoint.status).toBe('superseded');

    // Sync the market data now, through its confirmation.
    await page.getByRole('link', { name: 'Schedules', exact: true }).click();
    await page.getByRole('button', { name: 'Trigger market-data-daily' }).click();
    await page.getByRole('dialog', { name: 'Trigger market-data-daily' }).getByRole('button', { name: 'Run now' }).click();
    await page.locator('tr', { hasText: 'market-data-daily' }).getByText('enqueued').waitFor();
    expect((await read('/api/schedules/market-data-daily')).history[0]).toMatchObject({ outcome: 'enqueued', manual: true, actor: 'api (operator)' });

    for (const [name, heading] of [['3-schedules', 'Schedules'], ['4-data', 'Data'], ['5-failures', 'Failures']] as const) {
      await page.getByRole('link', { name: heading, exact: true }).click();
      await page.getByRole('heading', { name: heading, exact: true }).waitFor();
      await page.locator('table, .failures').first().waitFor();
      await shoot(page, name);
    }
    await expect(page.locator('.failures').textContent()).resolves.toContain('no data source answers for BAD');
    await page.getByRole('link', { name: 'Data', exact: true }).click();
    await expect(page.locator('tr', { hasText: 'TSLY' }).textContent()).resolves.toContain('stale');
    // The session survives a reload (sessionStorage), and ends with sign-out.
    await page.reload();
    await page.getByText('Signed in as').waitFor();
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('API token').waitFor();
    await page.close();

    // The read token: every changing action is disabled, saying why; the API refuses it anyway.
    const reader = await openPage(problems);
    await signIn(reader, READER);
    await reader.goto(`${base}/ui/#/models/llm1-tech/${first.id}`);
    await reader.getByRole('heading', { name: `${first.label} superseded` }).waitFor();
    // Older than the live checkpoint: listed under the earlier ones, folded.
    await reader.getByText('Earlier checkpoints').click();
    const promote = reader.getByRole('button', { name: `Promote ${first.label}` });
    await expect(promote.isDisabled()).resolves.toBe(true);
    await expect(promote.getAttribute('title')).resolves.toBe('Needs the operate scope; this token has read.');
    await expect(reader.getByRole('button', { name: 'Roll back…' }).isDisabled()).resolves.toBe(true);
    await expect(reader.locator('#needs-operate').textContent()).resolves.toContain('Read-only');
    await shoot(reader, '6-models-read-only');
    // The page's own token, sent as the console would send it.
    const refused = await reader.evaluate(`(async () => {
      const token = sessionStorage.getItem('caelum-console-token');
      const res = await fetch('../api/checkpoints/${first.id}/promote', { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: '{}' });
      return { status: res.status, body: await res.json() };
    })()`);
    expect(refused).toMatchObject({ status: 403, body: { error: 'forbidden', required: ['operate'], token: 'reader', granted: ['read'] } });
    expect((await read(`/api/checkpoints/${first.id}`)).checkpoint.status).toBe('superseded');
    await reader.getByRole('link', { name: 'Failures' }).click();
    await expect(reader.getByRole('button', { name: 'Retry…' }).first().isDisabled()).resolves.toBe(true);
    await reader.close();
    expect(problems).toEqual([]);
  }, 240_000);
});
