// The caelum-scheduler command as an operator runs it: real child processes, real servers.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/fleet.js';
import { deletePrefix } from './helpers/redis.js';
import { DATABASE_URL, REDIS_URL, uniqueName } from './helpers/servers.js';

const BIN = path.join(REPO_ROOT, 'bin/caelum-scheduler.js');
const prefix = uniqueName('cli');
// The processes under test migrate into a schema of this file's own, dropped at the end.
const schema = uniqueName('cli');
const env = { REDIS_URL, DATABASE_URL, CAELUM_DB_SCHEMA: schema, CAELUM_PREFIX: prefix, LOG_LEVEL: 'warn', CAELUM_API_TOKEN: '', CAELUM_READ_TOKEN: '' };
const cli = (args: string[], extra: Record<string, string> = {}) =>
  execa('node', [BIN, ...args], { cwd: REPO_ROOT, env: { ...env, ...extra }, reject: false, timeout: 30_000 });

afterAll(async () => {
  await deletePrefix(prefix);
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`drop schema if exists ${admin.escapeIdentifier(schema)} cascade`);
  await admin.end();
});

async function jobsIn(queueName: string): Promise<number> {
  const queue = new Queue(queueName, { connection: new Redis(REDIS_URL), prefix });
  try {
    return Object.values(await queue.getJobCounts()).reduce((a, b) => a + b, 0);
  } finally {
    await queue.close();
    await queue.disconnect();
  }
}

describe('caelum-scheduler enqueue', () => {
  it('adds a job through the shared enqueue function', async () => {
    const res = await cli(['enqueue', 'training', '--model', 'llm1-tech', '--param', 'epochs=3', '--param', 'note=nightly']);
    expect(res.stderr).toBe('');
    expect(res.exitCode).toBe(0);
    const job = JSON.parse(res.stdout) as { id: string; queue: string };
    expect(job).toMatchObject({ kind: 'training', queue: 'training-llm1-tech', state: 'waiting' });
    const queue = new Queue(job.queue, { connection: new Redis(REDIS_URL), prefix });
    try {
      const stored = await queue.getJob(job.id);
      expect(stored?.data).toMatchObject({
        payload: { model: 'llm1-tech', params: { epochs: 3, note: 'nightly' } },
        trigger: { reason: 'cli' },
      });
    } finally {
      await queue.close();
      await queue.disconnect();
    }
  });

  it('refuses an unknown model and a bad flag, and enqueues nothing', async () => {
    const before = await jobsIn('training-llm1-tech');
    const unknown = await cli(['enqueue', 'training', '--model', 'llm9-nope']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/unknown model "llm9-nope"/);
    const flag = await cli(['enqueue', 'training', '--model', 'llm1-tech', '--shell', 'rm -rf /']);
    expect(flag.exitCode).toBe(2);
    expect(flag.stderr).toMatch(/--shell/);
    expect(await jobsIn('training-llm1-tech')).toBe(before);
  });

  it('prints help for each command', async () => {
    for (const command of ['enqueue', 'api', 'dev', 'demo']) {
      const res = await cli([command, '--help']);
      expect(res.exitCode).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`Usage: caelum-scheduler ${command}`));
    }
    const unknown = await cli(['launch']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "launch"/);
  });
});

describe('refusing to start', () => {
  it('stops on a bad config file with the path and the problem', async () => {
    const shipped = readFileSync(path.join(REPO_ROOT, 'workers.config.ts'), 'utf8');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-cli-'));
    // .mts: outside a package with "type": "module", a .ts file would load as CommonJS.
    const file = path.join(dir, 'workers.config.mts');
    writeFileSync(
      file,
      shipped
        .replace("from './src/config/define-config.js'", `from ${JSON.stringify(path.join(REPO_ROOT, 'src/config/define-config.ts'))}`)
        .replace("pool: 'llm3',", "pool: 'gpu2',"),
    );
    const res = await cli(['enqueue', 'training', '--model', 'llm1-tech'], { CAELUM_CONFIG: file });
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toContain('models.llm3-yieldmax.pool: unknown pool "gpu2"');
  });

  it('stops on a bad environment, naming the variable', async () => {
    const res = await cli(['api'], { PORT: 'http' });
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toMatch(/PORT/);
    const noToken = await cli(['api']);
    expect(noToken.exitCode).toBe(1);
    expect(noToken.stderr).toMatch(/CAELUM_API_TOKEN: required/);
  });

  it('says which server is down', async () => {
    const res = await cli(['api'], { CAELUM_API_TOKEN: 'x'.repeat(20), DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test', PORT: '0' });
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toMatch(/PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/test is unreachable/);
  });
});

describe('caelum-scheduler dev', () => {
  it('serves the API, runs a training job end to end with live progress, and exits cleanly on SIGTERM', async () => {
    const child = execa('node', [BIN, 'dev'], {
      cwd: REPO_ROOT,
      env: { ...env, PORT: '0', CAELUM_API_TOKEN: 'operator-token-of-the-cli-test' },
      reject: false,
    });
    let out = '';
    try {
      const url = await new Promise<string>((resolve, reject) => {
        child.stdout!.on('data', (chunk: Buffer) => {
          out += chunk.toString();
          const m = /API\s+(http:\/\/\S+)\/api\/health/.exec(out);
          if (m?.[1]) resolve(m[1]);
        });
        void child.then((r) => reject(new Error(`dev exited early: ${r.stderr}`)));
      });
      const health = await fetch(`${url}/api/health`);
      expect(health.status).toBe(200);
      const created = await fetch(`${url}/api/jobs/training`, {
        method: 'POST',
        headers: { authorization: 'Bearer operator-token-of-the-cli-test', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'llm1-tech', params: { epochs: 3, epoch_ms: 400 } }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      // The read token was made for this run and printed; it reads but may not write.
      const readToken = /read token\s+(\S+)/.exec(out)?.[1];
      expect(readToken).toMatch(/^read_/);
      const seen: { state: string; progress: { epoch?: number } }[] = [];
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline) {
        const read = await fetch(`${url}/api/jobs/${id}`, { headers: { authorization: `Bearer ${readToken}` } });
        const view = (await read.json()) as { state: string; progress: { epoch?: number } };
        seen.push(view);
        if (view.state === 'completed' || view.state === 'failed') break;
        await new Promise((r) => setTimeout(r, 100));
      }
      // Progress was visible while the trainer ran, and the job completed with a checkpoint.
      expect(seen.some((v) => v.state === 'active' && typeof v.progress?.epoch === 'number')).toBe(true);
      const last = seen.at(-1) as unknown as { state: string; result: { checkpoints: unknown[] } };
      expect(last.state).toBe('completed');
      expect(last.result.checkpoints).toHaveLength(1);
      const write = await fetch(`${url}/api/jobs/${id}/cancel`, { method: 'POST', headers: { authorization: `Bearer ${readToken}` } });
      expect(write.status).toBe(403);
    } finally {
      child.kill('SIGTERM');
    }
    const result = await child;
    expect(result.exitCode).toBe(0);
  });
});
