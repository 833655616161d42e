// The README's promise: `npm run demo` serves on a machine with only Node and a redis-server
// binary. The demo runs in a network namespace where nothing listens on 6379 or 5432, so it must
// start its private Redis and its embedded PGlite, and still train, validate and feed.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './helpers/fleet.js';

const canIsolate = process.getuid?.() === 0 && (await execa('unshare', ['-n', 'true'], { reject: false })).exitCode === 0;

describe.skipIf(!canIsolate)('the demo without Redis or PostgreSQL running', () => {
  it('starts a private redis-server and PGlite, trains, validates and answers the feed', async () => {
    const data = mkdtempSync(path.join(os.tmpdir(), 'caelum-demo-'));
    try {
      const res = await execa('unshare', ['-n', 'bash', path.join(REPO_ROOT, 'test/fixtures/demo-offline.sh'), data, '3399'], {
        cwd: REPO_ROOT,
        env: { CAELUM_DATA_DIR: data, PORT: '3399', LOG_LEVEL: 'warn', CAELUM_API_TOKEN: '', CAELUM_READ_TOKEN: '', REDIS_URL: '', DATABASE_URL: '' },
        timeout: 120_000,
        reject: false,
      });
      const log = readFileSync(path.join(data, 'demo.log'), 'utf8');
      expect(log).toMatch(/Redis\s+a private redis-server/);
      expect(log).toMatch(/Postgres\s+embedded PGlite/);
      const seen = JSON.parse(res.stdout.trim().split('\n').at(-1)!);
      expect(seen.health).toMatchObject({ status: 'ok' });
      expect(seen.job).toMatchObject({ kind: 'training', queue: 'training-llm1-tech' });
      expect(seen.feed.checkpoints).toMatchObject([{ model: 'llm1-tech', status: 'validated' }]);
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});
