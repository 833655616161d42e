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
  it('starts a private redis-server and PGlite, trains, validates, answers the feed, refuses a second demo and keeps its jobs', async () => {
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
      // The demo's own Redis keeps its data (AOF), so it is not warned about.
      expect(log).not.toMatch(/Redis keeps nothing on disk/);
      // A second demo on the same data folder is refused in one line, naming the first.
      expect(seen.second.code).toBe(1);
      expect(readFileSync(path.join(data, 'second.log'), 'utf8').trim()).toMatch(
        /^caelum-scheduler: the private Redis's data in \S+\/redis is in use by another demo \(pid \d+\); stop that one, or set CAELUM_DATA_DIR to another folder$/,
      );
      // Restarted, the demo has its job back: Redis's append-only file lives in the data folder.
      expect(seen.restarted).toMatchObject({ id: seen.job.id, state: 'completed' });
    } finally {
      rmSync(data, { recursive: true, force: true });
    }
  });
});
