// Fault: a hostile trainer. Nemesis: a child that, inside its own output folder, points what it
// reports at decoy files outside every configured folder (a folder link, a file link, its whole
// output folder replaced by a link, a hard link, a path out with `..`, an absolute path), and a
// hand that turns registered checkpoints into links to decoys before retention prunes them.
// Counted: decoy files touched (read-only, changed, deleted, added to), hostile checkpoints
// registered, refusals whose reason names what was refused, honest checkpoints registered,
// read-only and matching their sha256, and what pruning deleted. Real worker, real children,
// real Redis and Postgres; every decoy lives in this file's own temporary folder.
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { prune } from '../../src/checkpoints/prune.js';
import { fileMismatch } from '../../src/contained-files.js';
import { isInside } from '../../src/paths.js';
import { enqueue } from '../../src/queues/enqueue.js';
import type { RunningWorkers } from '../../src/workers/start-workers.js';
import { startApi, type ApiHarness } from '../helpers/api.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { onePoolFleet } from '../helpers/fleet.js';
import { testLogger } from '../helpers/logger.js';
import { uniqueName } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorkers } from '../helpers/workers.js';

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'caelum-fault-hostile-'));
/** Outside every configured folder: the checkpoint folder is sandbox/checkpoints, the worker's data folder another temp folder. */
const decoys = path.join(sandbox, 'decoys');
const checkpointDir = path.join(sandbox, 'checkpoints', 'hostile');
const fleet = onePoolFleet(
  '(hostile trainer fault test)',
  { 'host-a': { gpus: [0, 1].map((index) => ({ index, name: 'Fake GPU', memoryMiB: 8192 })), cpuSlots: 2 } },
  {
    hostile: {
      train: { command: ['node', 'test/fixtures/hostile-trainer.mjs'], timeoutSeconds: 30, attempts: 1 },
      validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 30, attempts: 1 },
      retention: 50,
      checkpointDir,
    },
  },
);

/** Each trick and how its refusal must read: what it names is checked below. */
const TRICKS = {
  'dir-link': /goes through a symbolic link: (\S+)$/,
  'own-folder-link': /goes through a symbolic link: (\S+)$/,
  'file-link': /(\S+) is a symbolic link$/,
  'hard-link': /(\S+) has 2 hard links/,
  dotdot: /(\S+) is outside /,
  absolute: /(\S+) is outside /,
} as const;
type Trick = keyof typeof TRICKS;
const HONEST_RUNS = 4;

/**
 * Every file and folder under the decoys, with its mode and content: what must never change. (Not
 * its link count: the hard-link trick itself gives the decoy a second name, inside its folder.)
 */
function decoyState(): Map<string, string> {
  const state = new Map<string, string>();
  for (const e of readdirSync(decoys, { recursive: true, withFileTypes: true })) {
    const p = path.join(e.parentPath, e.name);
    const info = lstatSync(p);
    state.set(p, `${info.mode.toString(8)} ${e.isFile() ? readFileSync(p, 'utf8') : e.isDirectory() ? 'dir' : 'other'}`);
  }
  return state;
}
const touched = (before: Map<string, string>, after: Map<string, string>) =>
  [...new Set([...before.keys(), ...after.keys()])].filter((p) => before.get(p) !== after.get(p));

let db: TestSchema;
let api: ApiHarness;
let workers: RunningWorkers | undefined;

beforeAll(async () => {
  for (const name of [...Object.keys(TRICKS), 'prune-folder', 'prune-file']) {
    mkdirSync(path.join(decoys, name), { recursive: true });
    writeFileSync(path.join(decoys, name, 'weights.pt'), `decoy ${name}: must never be read, registered or deleted`, { mode: 0o644 });
  }
  db = await createTestSchema('faulthostile');
  api = await startApi({ fleet, prefix: uniqueName('faulthostile'), schema: db.schema });
});
afterAll(async () => {
  await workers?.close();
  await api?.close();
  await db?.drop();
  rmSync(sandbox, { recursive: true, force: true });
});

const getJob = (id: string) => api.queues.get(id.slice(0, id.indexOf('.')))!.queue.getJob(id) as Promise<Job | undefined>;
const finished = (id: string) => waitFor(`job ${id} to finish`, async () => ((await getJob(id))?.finishedOn ? getJob(id) : undefined), { timeoutMs: 45_000 });
const train = (params: Record<string, string>) =>
  enqueue({ fleet, queues: api.queues }, 'training', { model: 'hostile', params }, { reason: 'api', by: 'fault test', at: new Date().toISOString() });

describe('nothing outside the configured folders is read, registered or deleted', () => {
  it('refuses every hostile checkpoint naming why, registers the honest ones read-only, and prunes through no link', async () => {
    const before = decoyState();
    workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-a']);
    const hostile = await Promise.all((Object.keys(TRICKS) as Trick[]).map(async (trick) => ({ trick, job: await train({ trick, decoy: path.join(decoys, trick) }) })));
    const honest = await Promise.all(Array.from({ length: HONEST_RUNS }, () => train({ trick: 'honest' })));

    // Each refusal must name the entry it refused: a link that is really there, inside the folder;
    // a hard-linked file inside the folder; or the outside path itself.
    let refusedNamingIt = 0;
    for (const { trick, job } of hostile) {
      const done = (await finished(job.id))!;
      const named = TRICKS[trick].exec(done.failedReason ?? '')?.[1];
      const ok =
        (await done.getState()) === 'failed' &&
        named !== undefined &&
        (trick === 'dotdot' || trick === 'absolute'
          ? !isInside(path.resolve(named), checkpointDir)
          : isInside(named, checkpointDir) && (trick === 'hard-link' ? lstatSync(named).isFile() : lstatSync(named).isSymbolicLink()));
      if (ok) refusedNamingIt++;
      else testLogger.error({ trick, state: await done.getState(), reason: done.failedReason }, 'hostile checkpoint not refused as expected');
    }

    const registered: { id: number; path: string; mode: number; mismatch: string | undefined }[] = [];
    for (const job of honest) {
      const done = (await finished(job.id))!;
      const { registered: r } = (done.returnvalue ?? { registered: [] }) as { registered: { id: number }[] };
      for (const { id } of r) {
        const c = (await api.registry.checkpoints.get(id))!;
        registered.push({ id, path: c.path, mode: statSync(c.path).mode & 0o777, mismatch: await fileMismatch(c.path, [checkpointDir], c) });
        await finished(`deploy-test-hostile.validate-${id}`);
      }
    }
    await workers.close();
    workers = undefined;
    registered.sort((a, b) => a.id - b.id); // registration order, which retention goes by
    const { rows: all } = await db.pool.query<{ path: string }>('select path from checkpoints');

    // Nemesis, after registration: the three older honest checkpoints are pruned below. The oldest
    // has its folder turned into a link to a decoy folder, the next its file into a link to a decoy
    // file; the third is left as it is, so pruning still has a real file to delete.
    const [folderTampered, fileTampered, untouched, newest] = registered;
    const folder = path.dirname(folderTampered!.path);
    renameSync(folder, path.join(sandbox, 'moved-aside'));
    symlinkSync(path.join(decoys, 'prune-folder'), folder);
    unlinkSync(fileTampered!.path);
    symlinkSync(path.join(decoys, 'prune-file', 'weights.pt'), fileTampered!.path);
    const pruned = await prune(api.registry.checkpoints, 'hostile', { retention: 1, checkpointDir }, 'fault test', testLogger);

    const exists = (p: string) => lstatSync(p, { throwIfNoEntry: false }) !== undefined;
    expect({
      decoysTouched: touched(before, decoyState()),
      hostileRegistered: all.filter((r) => !registered.some((h) => h.path === r.path)).length,
      refusedNamingIt,
      honestRegistered: registered.length,
      honestNotReadOnly: registered.filter((r) => r.mode !== 0o444).length,
      honestMismatched: registered.filter((r) => r.mismatch !== undefined).length,
      pruned: pruned.length,
      linksDeletedOrFollowed: [folder, fileTampered!.path].filter((p) => !exists(p) || !lstatSync(p).isSymbolicLink()).length,
      prunedRealFileDeleted: !exists(untouched!.path),
      newestKept: exists(newest!.path),
    }).toEqual({
      decoysTouched: [],
      hostileRegistered: 0,
      refusedNamingIt: Object.keys(TRICKS).length,
      honestRegistered: HONEST_RUNS,
      honestNotReadOnly: 0,
      honestMismatched: 0,
      pruned: HONEST_RUNS - 1,
      linksDeletedOrFollowed: 0,
      prunedRealFileDeleted: true,
      newestKept: true,
    });
  });
});
