// A test file's fleet written as a config file in its own sandbox (so real worker processes can
// load it too), with its own schema, BullMQ prefix and API, and the workers and worker processes
// its tests start, stopped after each test. Everything is removed after the file.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ResultPromise } from 'execa';
import { afterAll, afterEach, beforeAll } from 'vitest';
import { loadFleet, type LoadedFleet } from '../../src/config/load-fleet.js';
import type { RunningWorkers } from '../../src/workers/start-workers.js';
import { startApi, type ApiHarness } from './api.js';
import { createTestSchema, type TestSchema } from './db.js';
import { uniqueName } from './servers.js';
import { spawnWorkerProcess } from './workers.js';

export interface FleetFileHarness {
  sandbox: string;
  configFile: string;
  /** Data folder the workers of this file share. */
  dataDir: string;
  prefix: string;
  fleet: LoadedFleet;
  db: TestSchema;
  api: ApiHarness;
  /** In-process workers a test started; closed after the test. */
  workers: RunningWorkers | undefined;
  /** A real worker process for a host, killed (SIGKILL) after the test if still running. */
  workerProcess(host: string, env?: Record<string, string>): ResultPromise;
}

/** `config(sandbox)` builds the fleet input; `afterEachTest` runs after the workers are stopped. */
export function fleetFileHarness(label: string, config: (sandbox: string) => object, afterEachTest?: (h: FleetFileHarness) => Promise<void>): FleetFileHarness {
  const sandbox = mkdtempSync(path.join(os.tmpdir(), `caelum-${label}-`));
  const processes: ResultPromise[] = [];
  const h = {
    sandbox,
    configFile: path.join(sandbox, 'fleet.config.mjs'),
    dataDir: path.join(sandbox, 'data'),
    prefix: uniqueName(label),
    workers: undefined,
    workerProcess(host: string, env: Record<string, string> = {}) {
      const child = spawnWorkerProcess(host, { prefix: h.prefix, schema: h.db.schema, configFile: h.configFile }, { CAELUM_DATA_DIR: h.dataDir, ...env });
      processes.push(child);
      return child;
    },
  } as FleetFileHarness;
  beforeAll(async () => {
    mkdirSync(h.dataDir);
    writeFileSync(h.configFile, `export default ${JSON.stringify(config(sandbox))};\n`);
    h.fleet = await loadFleet(h.configFile);
    h.db = await createTestSchema(label);
    h.api = await startApi({ fleet: h.fleet, prefix: h.prefix, schema: h.db.schema });
  });
  afterEach(async () => {
    for (const p of processes.splice(0)) {
      p.kill('SIGKILL');
      await p;
    }
    await h.workers?.close();
    h.workers = undefined;
    await afterEachTest?.(h);
  });
  afterAll(async () => {
    await h.api?.close();
    await h.db?.drop();
    rmSync(sandbox, { recursive: true, force: true });
  });
  return h;
}
