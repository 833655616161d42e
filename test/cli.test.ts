// The caelum-scheduler command as an operator runs it: real child processes, real servers.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../src/net.js';
import { REPO_ROOT } from './helpers/fleet.js';
import { deletePrefix } from './helpers/redis.js';
import { DATABASE_URL, REDIS_URL, uniqueName } from './helpers/servers.js';
import { pidAlive, waitFor } from './helpers/wait.js';

const BIN = path.join(REPO_ROOT, 'bin/caelum-scheduler.js');
const prefix = uniqueName('cli');
// The processes under test migrate into a schema of this file's own, dropped at the end.
const schema = uniqueName('cli');
// Job outputs go to a data folder of its own, not the repository's .caelum/.
const dataDir = mkdtempSync(path.join(os.tmpdir(), 'caelum-cli-data-'));
const env = { REDIS_URL, DATABASE_URL, CAELUM_DB_SCHEMA: schema, CAELUM_PREFIX: prefix, CAELUM_DATA_DIR: dataDir, LOG_LEVEL: 'warn', CAELUM_API_TOKEN: '', CAELUM_READ_TOKEN: '' };
const cli = (args: string[], extra: Record<string, string> = {}) =>
  execa('node', [BIN, ...args], { cwd: REPO_ROOT, env: { ...env, ...extra }, reject: false, timeout: 30_000 });

afterAll(async () => {
  rmSync(dataDir, { recursive: true, force: true });
  await deletePrefix(prefix);
  const admin = new pg.Client({ connectionString: DATABASE_URL });
  await admin.connect();
  await admin.query(`drop schema if exists ${admin.escapeIdentifier(schema)} cascade`);
  await admin.end();
});

/**
 * Splits a command line as a POSIX shell would, for the lines the banner prints: single quotes
 * and backslashes. A character the shell would expand or treat specially outside quotes fails
 * the test, since the line would then not run as printed.
 */
function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unclosed quote in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '\\') word = (word ?? '') + line[++i];
    else if (c === ' ') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (/[$`"*?;&|<>(){}[\]~#!]/.test(c)) throw new Error(`unquoted ${c} in: ${line}`);
    else word = (word ?? '') + c;
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** Starts `caelum-scheduler dev` and resolves with its API URL once it prints its banner. */
async function startDev(extra: Record<string, string>) {
  const child = execa('node', [BIN, 'dev'], { cwd: REPO_ROOT, env: { ...env, PORT: '0', ...extra }, reject: false });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const m = /API\s+(http:\/\/\S+)\/api\/health/.exec(out);
      if (m?.[1]) resolve(m[1]);
    });
    void child.then((r) => reject(new Error(`dev exited early: ${r.stderr}`)));
  });
  return { child, url, output: () => out };
}

describe('the CLI against a running dev stack', () => {
  // Characters a shell would act on: the banner's commands must quote it to work as printed.
  const TOKEN = "operator'token$of&the-cli-test";
  let dev: Awaited<ReturnType<typeof startDev>>;
  const client = (args: string[]) => cli(args, { CAELUM_API_URL: dev.url, CAELUM_API_TOKEN: TOKEN });
  beforeAll(async () => {
    dev = await startDev({ CAELUM_CONFIG: path.join(REPO_ROOT, 'test/fixtures/workers.config.mts'), CAELUM_API_TOKEN: TOKEN });
  });
  afterAll(async () => {
    dev.child.kill('SIGTERM');
    expect((await dev.child).exitCode).toBe(0);
  });

  it("the banner's CLI line works as printed, and says the market data is synced first", async () => {
    const line = dev.output().split('\n').find((l) => l.includes(' npx caelum-scheduler enqueue '));
    expect(line).toBeDefined();
    // The curl lines quote the URL with a `?` (a shell would glob it).
    expect(dev.output()).toMatch(/^ +curl -s 'http:\/\/127\.0\.0\.1:\d+\/api\/jobs\?kind=training' -H /m);
    const words = shellWords(line!.trim());
    const npx = words.indexOf('npx');
    const assignments = Object.fromEntries(words.slice(0, npx).map((w) => [w.slice(0, w.indexOf('=')), w.slice(w.indexOf('=') + 1)]));
    expect(assignments).toEqual({ CAELUM_API_URL: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/), CAELUM_API_TOKEN: TOKEN });
    expect(words.slice(npx, npx + 2)).toEqual(['npx', 'caelum-scheduler']);
    const argv = words.slice(npx + 2);
    // The first model of the config; its training syncs its two symbols first.
    expect(argv).toEqual(['enqueue', 'training', '--model', 'small', '--wait']);
    const res = await execa('node', [BIN, ...argv], { cwd: REPO_ROOT, env: { ...env, ...assignments }, reject: false, timeout: 60_000 });
    expect(res.stderr).toBe('');
    expect(res.exitCode).toBe(0);
    expect(res.stdout).toMatch(/^training-small\.\S+  waiting-children: syncing market data first: [0-2] of 2 syncs done/m);
    expect(res.stdout).toMatch(/^completed$/m);
  });

  it('enqueue --wait shows progress, then the checkpoint and its validation verdict', async () => {
    // The CLI polls once a second: epochs after the first span 1.5 s, so a poll sees one.
    const res = await client(['enqueue', 'training', '--model', 'yield', '--param', 'epochs=4', '--param', 'epoch_ms=500', '--wait']);
    expect(res.stderr).toBe('');
    expect(res.exitCode).toBe(0);
    expect(res.stdout).toMatch(/\[#+-*\]\s+\d+%\s+epoch \d\/4/);
    expect(res.stdout).toMatch(/val_accuracy=/);
    const [completed, registered, verdict, ...rest] = res.stdout.trim().split('\n').slice(-3);
    expect(rest).toEqual([]);
    expect(completed).toBe('completed');
    expect(registered).toMatch(/^checkpoint yield-v1\.\d+\.0 \(id \d+\): (registered|validating|validated|rejected)/);
    // The validator passes or rejects by chance; either way the verdict says why.
    expect(verdict).toMatch(/^validation of yield-v1\.\d+\.0: (validated  val_accuracy=[\d.]+|rejected  val_accuracy [\d.]+ is below)/);
  });

  it('tells a CLI user which variable or flag to set when the API refuses the token', async () => {
    const wrong = await cli(['jobs'], { CAELUM_API_URL: dev.url, CAELUM_API_TOKEN: 'not-the-token-of-this-run' });
    expect(wrong.exitCode).toBe(1);
    expect(wrong.stderr).toMatch(/^caelum-scheduler: 401 /);
    expect(wrong.stderr).toMatch(/did not accept the token from CAELUM_API_TOKEN: set CAELUM_API_TOKEN \(or pass --token\) to the operator token/);
    const flag = await cli(['jobs', '--token', 'not-the-token-of-this-run'], { CAELUM_API_URL: dev.url });
    expect(flag.stderr).toMatch(/the token from --token/);
    const readToken = /read token\s+(\S+)/.exec(dev.output())?.[1];
    const reader = await cli(['enqueue', 'training', '--model', 'yield', '--token', readToken!], { CAELUM_API_URL: dev.url });
    expect(reader.exitCode).toBe(1);
    expect(reader.stderr).toMatch(/403 POST \/api\/jobs\/:kind needs one of the scopes enqueue, operate; the token "reader" has read\n  the token from --token lacks that scope: set CAELUM_API_TOKEN \(or pass --token\) to a token that has it/);
  });

  it('enqueue --wait exits 1 when the job fails, saying why', async () => {
    const res = await client(['enqueue', 'training', '--model', 'yield', '--param', 'fail_at_epoch=1', '--param', 'epoch_ms=50', '--wait']);
    expect(res.exitCode).toBe(1);
    expect(res.stdout).toMatch(/failed: exit code 1: CUDA error: out of memory/);
  });

  it('refuses an unknown model and a bad flag, and enqueues nothing', async () => {
    const before = JSON.parse((await client(['jobs', '--json'])).stdout).total as number;
    const unknown = await client(['enqueue', 'training', '--model', 'llm9-nope']);
    expect(unknown.exitCode).not.toBe(0);
    expect(unknown.stderr).toMatch(/400 unknown model "llm9-nope"/);
    const flag = await client(['enqueue', 'training', '--model', 'yield', '--shell', 'rm -rf /']);
    expect(flag.exitCode).toBe(2);
    expect(flag.stderr).toMatch(/--shell/);
    expect(JSON.parse((await client(['jobs', '--json'])).stdout).total).toBe(before);
  });

  it('research --wait follows the pipeline to its summary table', async () => {
    const res = await client(['research', '--model', 'yield', '--symbols', 'AAPL,MSFT', '--wait']);
    expect(res.stderr).toBe('');
    expect(res.exitCode).toBe(0);
    expect(res.stdout.split('\n')[0]).toMatch(/^pipeline \S+  started/);
    expect(res.stdout).toMatch(/training: (waiting|active|completed)/);
    expect(res.stdout).toMatch(/^SYMBOL\s+SHARPE\s+RETURN\s+DRAWDOWN\s+WIN RATE/m);
    expect(res.stdout).toMatch(/^AAPL\s+-?\d/m);
    expect(res.stdout).toMatch(/^MSFT\s+-?\d/m);
    expect(res.stdout).toMatch(/^overall\s+-?\d/m);
  });

  it('prints tables of jobs, workers, schedules and checkpoints, or JSON', async () => {
    const jobs = await client(['jobs', '--kind', 'training']);
    expect(jobs.stdout.split('\n')[0]).toMatch(/^ID\s+KIND\s+STATE\s+MODEL\s+PROGRESS/);
    expect(jobs.stdout).toMatch(/training-yield\.\S+\s+training\s+completed/);
    const workers = await client(['workers']);
    expect(workers.stdout).toMatch(/^HOST/);
    expect(workers.stdout).toMatch(/host-a\s+0\/2/);
    const checkpoints = JSON.parse((await client(['checkpoints', '--model', 'yield', '--json'])).stdout);
    expect(checkpoints.total).toBeGreaterThanOrEqual(1);
    expect((await client(['schedules'])).stdout).toMatch(/^NAME\s+CRON/);
  });
});

describe('refusing to start', () => {
  it('stops on a bad config file with the path and the problem', async () => {
    const shipped = readFileSync(path.join(REPO_ROOT, 'workers.config.ts'), 'utf8');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-cli-'));
    // A .ts file outside any package: it loads as TypeScript and ES module all the same.
    const file = path.join(dir, 'workers.config.ts');
    writeFileSync(
      file,
      shipped
        .replace("from 'caelum-scheduler/config'", `from ${JSON.stringify(path.join(REPO_ROOT, 'dist/config/define-config.js'))}`)
        .replace("pool: 'llm3',", "pool: 'gpu2',"),
    );
    const res = await cli(['api'], { CAELUM_CONFIG: file, CAELUM_API_TOKEN: 'x'.repeat(20) });
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toContain('models.llm3-yieldmax.pool: unknown pool "gpu2"');
  });

  it('a scheduler stops when a webhook secret it must read is not set; a worker does not need it', async () => {
    const shipped = readFileSync(path.join(REPO_ROOT, 'workers.config.ts'), 'utf8');
    const dir = mkdtempSync(path.join(os.tmpdir(), 'caelum-cli-'));
    const file = path.join(dir, 'workers.config.mts');
    const hook = "notifications: { targets: { ops: { url: 'https://hooks.example/ops', secretEnv: 'CAELUM_TEST_HOOK_SECRET' } } },\n  schedules: {";
    writeFileSync(
      file,
      shipped
        .replace("from 'caelum-scheduler/config'", `from ${JSON.stringify(path.join(REPO_ROOT, 'dist/config/define-config.js'))}`)
        .replace('schedules: {', hook),
    );
    const res = await cli(['scheduler'], { CAELUM_CONFIG: file });
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toContain('notifications.targets.ops.secretEnv: environment variable CAELUM_TEST_HOOK_SECRET is not set');
    // The worker loads the same file and gets as far as the servers (a dead Redis here).
    const worker = await cli(['worker', '--host', 'gpu-22'], { CAELUM_CONFIG: file, CAELUM_METRICS_PORT: '0', REDIS_URL: 'redis://127.0.0.1:1', DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' });
    expect(worker.exitCode).toBe(1);
    expect(worker.stderr).not.toContain('notifications');
    expect(worker.stderr).toMatch(/unreachable|did not answer/);
    rmSync(dir, { recursive: true, force: true });
  });

  it('stops on a bad environment, naming the variable', async () => {
    const res = await cli(['api'], { PORT: 'http' });
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toMatch(/PORT/);
    const noToken = await cli(['api']);
    expect(noToken.exitCode).toBe(1);
    expect(noToken.stderr).toMatch(/CAELUM_API_TOKEN: required/);
  });

  it('refuses a taken port in one line, before it starts anything', async () => {
    const port = await freePort();
    const holder = execa('node', ['-e', `require('node:net').createServer().listen(${port}, '127.0.0.1', () => console.log('listening'))`], { reject: false });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.once('data', () => resolve());
        void holder.then((r) => reject(new Error(`the port holder exited: ${r.stderr}`)));
      });
      const ownSchema = uniqueName('port');
      const res = await cli(['demo'], { PORT: String(port), CAELUM_DB_SCHEMA: ownSchema, LOG_LEVEL: 'info' });
      expect(res.exitCode).toBe(1);
      expect(res.stderr.trim().split('\n')).toEqual([
        expect.stringMatching(new RegExp(`^caelum-scheduler: port ${port} on 127\\.0\\.0\\.1 is in use; set PORT=\\d+ or stop the other demo$`)),
      ]);
      // Nothing started: not a log line at info, and the database was not even migrated.
      expect(res.stdout).toBe('');
      const admin = new pg.Client({ connectionString: DATABASE_URL });
      await admin.connect();
      const found = await admin.query('select 1 from information_schema.schemata where schema_name = $1', [ownSchema]);
      await admin.end();
      expect(found.rowCount).toBe(0);
    } finally {
      holder.kill();
      await holder;
    }
  });

  it('says which server is down', async () => {
    const res = await cli(['api'], { CAELUM_API_TOKEN: 'x'.repeat(20), DATABASE_URL: 'postgres://postgres@127.0.0.1:1/test', PORT: '0' });
    expect(res.exitCode).toBe(1);
    expect(res.stderr).toMatch(/PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:1\/test is unreachable/);
  });
});

describe('help', () => {
  it('prints help for each command', async () => {
    for (const command of ['enqueue', 'worker', 'scheduler', 'checkpoints']) {
      const res = await cli([command, '--help']);
      expect(res.exitCode).toBe(0);
      expect(res.stdout).toMatch(new RegExp(`Usage: caelum-scheduler ${command}`));
    }
    const unknown = await cli(['launch']);
    expect(unknown.exitCode).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command "launch"/);
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

describe('a second shutdown signal', () => {
  it('exits at once with 130 while the first still waits for a running job', async () => {
    const token = 'operator-token-of-the-signal-test';
    // A grace far longer than the test's deadlines: only the second signal can end the wait.
    const dev = await startDev({
      CAELUM_CONFIG: path.join(REPO_ROOT, 'test/fixtures/workers.config.mts'),
      CAELUM_API_TOKEN: token,
      CAELUM_SHUTDOWN_GRACE_MS: '120000',
      LOG_LEVEL: 'info',
    });
    let exited = false;
    void dev.child.finally(() => (exited = true));
    try {
      const created = await fetch(`${dev.url}/api/jobs/training`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'yield', params: { epochs: 400, epoch_ms: 300 } }),
      });
      expect(created.status).toBe(201);
      const { id } = (await created.json()) as { id: string };
      const trainer = await waitFor('the job to run', async () => {
        const view = (await (await fetch(`${dev.url}/api/jobs/${id}`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
          state: string;
          progress?: { pid?: number };
        };
        return view.state === 'active' ? view.progress?.pid : undefined;
      });

      dev.child.kill('SIGTERM');
      await waitFor('the first signal to leave it waiting for the running job', () => /waiting for running jobs/.test(dev.output()));
      expect(exited).toBe(false);
      const second = performance.now();
      dev.child.kill('SIGTERM');
      const result = await waitFor('the process to exit', () => (exited ? dev.child : undefined), { timeoutMs: 5000 });
      expect(result.exitCode).toBe(130);
      expect(performance.now() - second).toBeLessThan(5000);
      expect(dev.output()).toMatch(/second signal: exiting now/);
      // Its trainer dies with it (parent-death signal), not left to run on.
      await waitFor('the trainer to die', () => !pidAlive(trainer), { timeoutMs: 3000 });
    } finally {
      if (!exited) dev.child.kill('SIGKILL');
      await dev.child;
    }
  });
});
