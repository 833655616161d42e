// The boundary table of the architecture, checked against the imports of src/. A failure names
// the file, the line and the rule it breaks.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkBoundaries, connectionOpeners, describeViolations } from './helpers/boundaries.js';

const SRC = path.resolve(import.meta.dirname, '../src');

// The files allowed to open a connection: the composition root, the CLI's own commands, the
// factories themselves, and the demo's probes (does a Redis answer? create the database).
const OPENERS = ['start.ts', 'cli.ts', 'commands/migrate.ts', 'redis.ts', 'registry/pool.ts', 'dev/embedded-redis.ts', 'dev/embedded-postgres.ts'];

describe('boundaries', () => {
  it('src/ keeps every rule of the boundary table', () => {
    const violations = checkBoundaries(SRC);
    expect(violations, describeViolations(violations)).toEqual([]);
  });

  it('only the composition root and the CLI open connections', () => {
    const found = connectionOpeners(SRC, OPENERS);
    expect(found, describeViolations(found)).toEqual([]);
  });

  describe('the checker itself', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'caelum-boundaries-'));
    afterAll(() => rmSync(dir, { recursive: true, force: true }));
    const plant = (rel: string, text: string) => {
      mkdirSync(path.dirname(path.join(dir, 'src', rel)), { recursive: true });
      writeFileSync(path.join(dir, 'src', rel), text);
    };
    plant('workers/host.ts', 'export const x = 1;\n');
    plant('workers/policy/order.ts', "import type { Spec } from '../../queues/spec.js';\nexport const f = () => Date.now();\n");
    plant('queues/spec.ts', "import type { Row } from '../registry/rows.js';\nexport type Spec = Row;\n");
    plant('registry/rows.ts', 'export type Row = { id: number };\n');
    plant('api/routes/workers.ts', "// a comment\nimport {\n  x,\n} from '../../workers/host.js';\nexport const y = x;\n");
    plant('queues/jobs.ts', "import { x } from '../workers/host.js';\nexport const z = x;\n");
    plant('config/env.ts', "import { z } from 'zod';\nimport { y } from '../api/routes/workers.js';\nexport const e = [z, y];\n");
    plant('checkpoints/feed.ts', "import pg from 'pg';\nexport const p = pg;\n");
    plant('scheduler/cron.ts', "import { createRedis } from '../redis.js';\nconst r = createRedis('x');\n");

    it('names file and line of each forbidden import, and lets allowed ones pass', () => {
      const found = checkBoundaries(path.join(dir, 'src')).map((v) => `${v.file}:${v.line}`).sort();
      expect(found).toEqual([
        'src/api/routes/workers.ts:2', // api -> workers, a multi-line import
        'src/config/env.ts:2', // config -> api
        'src/queues/jobs.ts:1', // queues -> workers
        'src/workers/policy/order.ts:2', // a clock read in the policy
      ]);
    });

    it('finds a connection opened outside the composition root', () => {
      const found = connectionOpeners(path.join(dir, 'src'), []).map((v) => `${v.file}:${v.line}`);
      expect(found).toEqual(['src/scheduler/cron.ts:2']);
    });
  });
});
