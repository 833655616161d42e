// The built command (bin/ runs dist/, which the test run keeps fresh): what each command loads,
// and the fleet file as JavaScript, as TypeScript in the repository and as TypeScript outside it.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asOperator, OPERATOR, startApi, type ApiHarness } from './helpers/api.js';
import { REPO_ROOT } from './helpers/fleet.js';

const BIN = path.join(REPO_ROOT, 'bin/caelum-scheduler.js');
const RECORDER = path.join(REPO_ROOT, 'test/fixtures/record-imports.mjs');
const tmp = mkdtempSync(path.join(os.tmpdir(), 'caelum-built-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs the built command in `cwd` and returns its result with the URLs of the modules it loaded. */
async function run(args: string[], env: Record<string, string> = {}, cwd = REPO_ROOT) {
  const log = path.join(mkdtempSync(path.join(tmp, 'run-')), 'imports.txt');
  writeFileSync(log, '');
  const res = await execa('node', ['--import', RECORDER, BIN, ...args], {
    cwd,
    env: { RECORD_IMPORTS_TO: log, LOG_LEVEL: 'warn', CAELUM_API_TOKEN: '', CAELUM_READ_TOKEN: '', ...env },
    extendEnv: false,
    reject: false,
    timeout: 30_000,
  });
  const loaded = readFileSync(log, 'utf8').split('\n').filter(Boolean);
  return { ...res, loaded };
}

const fromDist = (loaded: string[]) => loaded.filter((u) => u.includes('/dist/')).map((u) => u.slice(u.indexOf('/dist/') + 1));
const packages = (loaded: string[]) => [...new Set(loaded.map((u) => /\/node_modules\/((@[^/]+\/)?[^/]+)\//.exec(u)?.[1]).filter(Boolean))];
/** What a client command must never load: the server side, the fleet file's loader, a transpiler. */
const SERVER_SIDE = ['fastify', 'bullmq', 'ioredis', 'pg', 'pino', 'esbuild', 'tsx', '@electric-sql/pglite'];

describe('the built command', () => {
  it('runs from dist/ and prints its help loading no package at all', async () => {
    const res = await run(['--help']);
    expect(res.exitCode).toBe(0);
    expect(res.stdout).toMatch(/^Usage: caelum-scheduler <command>/);
    expect(fromDist(res.loaded)).toContain('dist/cli.js');
    expect(res.loaded.filter((u) => u.includes('/src/'))).toEqual([]);
    expect(packages(res.loaded)).toEqual([]);
  });

  it("prints a client command's help from that command's module only", async () => {
    const res = await run(['enqueue', '--help']);
    expect(res.exitCode).toBe(0);
    expect(res.stdout).toMatch(/^Usage: caelum-scheduler enqueue <kind>/);
    expect(fromDist(res.loaded)).not.toContain('dist/config/env.js');
    expect(packages(res.loaded)).toEqual([]);
  });

  describe('against a running API', () => {
    let api: ApiHarness;
    let base: string;
    let jobId: string;
    beforeAll(async () => {
      api = await startApi();
      base = await api.app.listen({ port: 0, host: '127.0.0.1' });
      const res = await api.app.inject({ method: 'POST', url: '/api/jobs/data-sync', headers: asOperator, payload: { symbol: 'BUILT' } });
      expect(res.statusCode).toBe(201);
      jobId = (res.json() as { id: string }).id;
    });
    afterAll(async () => {
      await api?.close();
    });

    it('lists jobs without loading the fleet file, the server code or a transpiler', async () => {
      const res = await run(['jobs', '--json'], { CAELUM_API_URL: base, CAELUM_API_TOKEN: OPERATOR });
      expect(res.exitCode, res.stderr).toBe(0);
      const { jobs } = JSON.parse(res.stdout) as { jobs: { id: string }[] };
      expect(jobs.map((j) => j.id)).toEqual([jobId]);
      const dist = fromDist(res.loaded);
      expect(dist).toContain('dist/commands/list-commands.js');
      for (const module of ['dist/start.js', 'dist/commands/serve.js', 'dist/config/load-fleet.js', 'dist/import-config.js', 'dist/api/app.js']) {
        expect(dist).not.toContain(module);
      }
      expect(packages(res.loaded).filter((p) => SERVER_SIDE.includes(p!))).toEqual([]);
    });
  });

  describe('the fleet file', () => {
    const hostsOf = (stderr: string) => /the config has (.*)$/m.exec(stderr)?.[1];
    /** `worker --host` a host the file lacks: it loads and validates the file, names its hosts and stops before connecting. */
    const loadThrough = (config: string, cwd = REPO_ROOT) =>
      // Metrics port 0: the check that it is free comes before the host's, and 9464 may be taken.
      run(['worker', '--host', 'not-in-the-file'], { CAELUM_CONFIG: config, CAELUM_METRICS_PORT: '0' }, cwd);

    it('as JavaScript (.mjs) loads with no transpiler', async () => {
      const dir = mkdtempSync(path.join(tmp, 'mjs-'));
      const file = path.join(dir, 'fleet.config.mjs');
      const cmd = "{ command: ['true'], timeoutSeconds: 60 }";
      writeFileSync(
        file,
        `export default { hosts: { 'js-1': { gpus: [], cpuSlots: 1 } }, pools: { all: ['js-1'] }, models: {}, backtest: { pool: 'all', ...${cmd} }, dataSync: { pool: 'all', ...${cmd} } };\n`,
      );
      const res = await loadThrough(file);
      expect(res.exitCode).toBe(1);
      expect(hostsOf(res.stderr)).toBe('js-1');
      expect(packages(res.loaded)).not.toContain('esbuild');
      expect(packages(res.loaded)).not.toContain('tsx');
    });

    it("as TypeScript: the repository's workers.config.ts, through esbuild and never tsx", async () => {
      const res = await loadThrough('workers.config.ts');
      expect(res.exitCode).toBe(1);
      expect(hostsOf(res.stderr)).toBe('wsl-27, gpu-44, gpu-22, gpu-62');
      expect(packages(res.loaded)).toContain('esbuild');
      expect(packages(res.loaded)).not.toContain('tsx');
    });

    it('as TypeScript outside the repository: the installed package, its own modules, import.meta', async () => {
      // A project of its own that has caelum-scheduler installed (a link to this repository).
      const project = mkdtempSync(path.join(tmp, 'project-'));
      mkdirSync(path.join(project, 'node_modules'));
      symlinkSync(REPO_ROOT, path.join(project, 'node_modules', 'caelum-scheduler'));
      mkdirSync(path.join(project, 'fleet'));
      writeFileSync(
        path.join(project, 'fleet', 'hosts.ts'),
        "import path from 'node:path';\nexport const folder: string = path.basename(import.meta.dirname);\nexport const slots = (n: number): { gpus: []; cpuSlots: number } => ({ gpus: [], cpuSlots: n });\n",
      );
      writeFileSync(
        path.join(project, 'workers.config.ts'),
        [
          "import { defineConfig, type FleetInput } from 'caelum-scheduler/config';",
          "import { folder, slots } from './fleet/hosts.ts';",
          "const cmd = { command: ['true'], timeoutSeconds: 60 };",
          "const hosts: FleetInput['hosts'] = { [`${folder}-1`]: slots(2) };",
          "export default defineConfig({ hosts, pools: { all: ['fleet-1'] }, models: {}, backtest: { pool: 'all', ...cmd }, dataSync: { pool: 'all', ...cmd } });",
        ].join('\n'),
      );
      const res = await loadThrough('workers.config.ts', project);
      expect(res.exitCode, res.stderr).toBe(1);
      // The helper's import.meta.dirname is its own folder, as it would be unbundled.
      expect(hostsOf(res.stderr)).toBe('fleet-1');
      // defineConfig came from the package's dist/, as Node resolved it.
      expect(fromDist(res.loaded)).toContain('dist/config/define-config.js');
    });

    it('with a syntax error: names the file and the line', async () => {
      const file = path.join(mkdtempSync(path.join(tmp, 'bad-')), 'workers.config.ts');
      writeFileSync(file, "import { defineConfig } from 'caelum-scheduler/config';\n\nexport default defineConfig({ hosts: { \n");
      const res = await loadThrough(file);
      expect(res.exitCode).toBe(1);
      expect(res.stderr).toContain(`caelum-scheduler: ${file}:`);
      expect(res.stderr).toMatch(/workers\.config\.ts:4:\d+: ERROR: /);
    });
  });
});
