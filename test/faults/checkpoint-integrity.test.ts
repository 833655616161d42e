// Fault: a registered checkpoint is exactly its file, always. Real workers, real children, real
// Redis and Postgres; every file lives in this test file's own temporary folder.
//   - Nemesis: a cut TCP link between one worker and Redis, longer than the job lock, while its
//     trainers finish; the jobs rerun on another worker. Counted: jobs lost, checkpoints
//     registered per job, registrations by a start that had lost its lock, registered checkpoints
//     whose file differs from their sha256.
//   - Nemesis: a hand that rewrites registered checkpoint files (before validation, after it,
//     before a rollback reaches them). Counted: changed files that were validated, promoted or
//     left on the feed, and changed files rejected with the reason.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Job } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileMismatch } from '../../src/contained-files.js';
import { enqueue } from '../../src/queues/enqueue.js';
import { listWorkers } from '../../src/queues/worker-status.js';
import type { Checkpoint } from '../../src/registry/checkpoints.js';
import { asOperator, startApi, type ApiHarness } from '../helpers/api.js';
import { createTestSchema, type TestSchema } from '../helpers/db.js';
import { onePoolFleet } from '../helpers/fleet.js';
import { REDIS_URL, uniqueName } from '../helpers/servers.js';
import { TcpProxy } from '../helpers/tcp-proxy.js';
import { waitFor } from '../helpers/wait.js';
import { startTestWorkers } from '../helpers/workers.js';

const sandbox = mkdtempSync(path.join(os.tmpdir(), 'caelum-fault-integrity-'));
const marks = path.join(sandbox, 'marks');
const checkpointDir = path.join(sandbox, 'checkpoints');
const gpus = [0, 1, 2].map((index) => ({ index, name: 'Fake GPU', memoryMiB: 8192 }));
const model = (name: string) => ({
  train: { command: ['node', 'test/fixtures/hostile-trainer.mjs'], timeoutSeconds: 30, attempts: 1 },
  validate: { command: ['node', 'examples/validator.mjs'], timeoutSeconds: 30, attempts: 1 },
  checkpointDir: path.join(checkpointDir, name),
});
const fleet = onePoolFleet(
  '(checkpoint integrity fault test)',
  { 'host-a': { gpus, cpuSlots: 2 }, 'host-b': { gpus, cpuSlots: 2 } },
  { cutoff: model('cutoff'), rewritten: model('rewritten') },
);

let db: TestSchema;
let api: ApiHarness;

beforeAll(async () => {
  mkdirSync(marks);
  db = await createTestSchema('faultintegrity');
  api = await startApi({ fleet, prefix: uniqueName('faultintegrity'), schema: db.schema });
});
afterAll(async () => {
  await api?.close();
  await db?.drop();
  rmSync(sandbox, { recursive: true, force: true });
});

const getJob = (id: string) => api.queues.get(id.slice(0, id.indexOf('.')))!.queue.getJob(id) as Promise<Job | undefined>;
const finished = (id: string, timeoutMs = 45_000) =>
  waitFor(`job ${id} to finish`, async () => ((await getJob(id))?.finishedOn ? getJob(id) : undefined), { timeoutMs });
const train = (modelName: string, params: Record<string, string | number>) =>
  enqueue({ fleet, queues: api.queues }, 'training', { model: modelName, params }, { reason: 'api', by: 'fault test', at: new Date().toISOString() });
/** The trainer fixture leaves <host>.<job id>.started and .reported in `marks`. */
const marked = (host: string, jobId: string, what: 'started' | 'reported') => existsSync(path.join(marks, `${host}.${jobId}.${what}`));
const mismatched = async (rows: Checkpoint[]) =>
  (await Promise.all(rows.map((c) => fileMismatch(c.path, [fleet.models[c.model]!.checkpointDir], c)))).filter((r) => r !== undefined);

describe('a registered checkpoint is exactly its file', () => {
  it('registers nothing from a start cut off from Redis past its job lock; the rerun registers its own file', async () => {
    const JOBS = 3;
    const redisPort = Number(new URL(REDIS_URL).port || 6379);
    const proxy = new TcpProxy(new URL(REDIS_URL).hostname, redisPort);
    await proxy.start();
    const lock = { lockDurationMs: 2_000, stalledIntervalMs: 1_000 };
    const cutOff = await startTestWorkers(fleet, api.prefix, db.pool, ['host-a'], lock, undefined, { redisUrl: `redis://127.0.0.1:${proxy.port}` });
    let rerun: Awaited<ReturnType<typeof startTestWorkers>> | undefined;
    let linkCut = false;
    try {
      // A trainer writes its checkpoint only once the gate of its host is open: host-a's after the
      // cut, host-b's once host-a's starts are over, so the rerun writes after any registration
      // the cut-off start could have made.
      const gate = path.join(marks, 'gate');
      const open = (host: string) => writeFileSync(`${gate}.${host}`, '');
      const jobs = await Promise.all(Array.from({ length: JOBS }, () => train('cutoff', { trick: 'honest', gate, marks })));
      await waitFor('every job to start on host-a', () => jobs.every((j) => marked('host-a', j.id, 'started')));
      // Nemesis: host-a loses Redis while its trainers run on; its job locks expire.
      await proxy.cut();
      linkCut = true;
      open('host-a');
      rerun = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b'], lock);
      await waitFor(
        'host-a to report every checkpoint, cut off, and host-b to rerun every job',
        () => jobs.every((j) => marked('host-a', j.id, 'reported') && marked('host-b', j.id, 'started')),
        { timeoutMs: 30_000 },
      );
      await proxy.restore();
      linkCut = false;
      await waitFor('host-a to be done with its starts', async () => {
        const status = (await listWorkers(api.redis, api.prefix)).find((w) => w.host === 'host-a');
        return status !== undefined && status.running.length === 0;
      });
      open('host-b');
      const done = await Promise.all(jobs.map((j) => finished(j.id)));
      const states = await Promise.all(done.map((j) => j!.getState()));
      const { rows: registrations } = await db.pool.query<{ training_job_id: string; actor: string }>(
        `select c.training_job_id, e.actor from checkpoints c join checkpoint_events e on e.checkpoint_id = c.id and e.to_status = 'registered'
         where c.model = 'cutoff'`,
      );
      const rows = (await api.registry.checkpoints.list({ model: 'cutoff', limit: 100, offset: 0 })).checkpoints;
      expect({
        lost: states.filter((s) => s !== 'completed').length,
        jobsWithoutCheckpoint: jobs.filter((j) => !registrations.some((r) => r.training_job_id === j.id)).length,
        duplicated: registrations.length - new Set(registrations.map((r) => r.training_job_id)).size,
        registeredByCutOffStart: registrations.filter((r) => r.actor === 'worker host-a').length,
        registeredFileDiffers: (await mismatched(rows)).length,
      }).toEqual({ lost: 0, jobsWithoutCheckpoint: 0, duplicated: 0, registeredByCutOffStart: 0, registeredFileDiffers: 0 });
    } finally {
      if (linkCut) await proxy.restore(); // so that host-a's worker can close
      await rerun?.close();
      await cutOff.close();
      await proxy.cut();
    }
  });

  it('rejects a checkpoint whose file was rewritten, when it is validated, promoted or rolled back to', async () => {
    const RUNS = 5;
    const workers = await startTestWorkers(fleet, api.prefix, db.pool, ['host-b']);
    const validations = api.queues.get('deploy-test-rewritten')!.queue;
    const rows = async () => (await api.registry.checkpoints.list({ model: 'rewritten', limit: 100, offset: 0 })).checkpoints.sort((a, b) => a.id - b.id);
    // Nemesis: a hand with the rights of the trainer makes the read-only file writable and rewrites it.
    const rewrite = (c: Checkpoint) => {
      chmodSync(c.path, 0o644);
      writeFileSync(c.path, JSON.stringify({ metrics: { val_accuracy: 0.99 }, rewritten: true }));
    };
    const promote = (c: Checkpoint) => api.app.inject({ method: 'POST', url: `/api/checkpoints/${c.id}/promote`, headers: asOperator, payload: {} });
    try {
      // The validations wait (the queue is paused) until the first checkpoint has been rewritten.
      await validations.pause();
      const jobs = await Promise.all(Array.from({ length: RUNS }, () => train('rewritten', { trick: 'honest' })));
      for (const j of jobs) expect(await (await finished(j.id))!.getState()).toBe('completed');
      const [beforeValidation, rollbackTarget, afterValidation, superseded, live] = await rows();
      rewrite(beforeValidation!);
      await validations.resume();
      for (const c of await rows()) await finished(`deploy-test-rewritten.validate-${c.id}`);

      rewrite(afterValidation!);
      const refused = await promote(afterValidation!);
      expect((await promote(superseded!)).statusCode).toBe(200);
      expect((await promote(live!)).statusCode).toBe(200);
      rewrite(superseded!);
      // The rollback rejects the rewritten superseded one, passes the rejected one before it, and
      // lands on the older validated one whose file is intact.
      const rollback = await api.app.inject({ method: 'POST', url: '/api/models/rewritten/rollback', headers: asOperator, payload: { reason: 'fault test' } });

      const after = await rows();
      const changedNow = await Promise.all(after.map((c) => fileMismatch(c.path, [fleet.models.rewritten!.checkpointDir], c)));
      const changedIds = new Set(after.filter((c, i) => changedNow[i] !== undefined).map((c) => c.id));
      const changed = after.filter((c) => changedIds.has(c.id));
      const feed = await api.registry.checkpoints.feed({ model: 'rewritten', after: 0, limit: 100 });
      const saysSo = (text: string | undefined) => /no longer matches its registration/.test(text ?? '');
      expect({
        changed: changed.length,
        changedAndAccepted: changed.filter((c) => ['validated', 'promoted', 'superseded'].includes(c.status)).length,
        changedOnFeed: feed.filter((e) => changedIds.has(e.id)).length,
        changedRejectedSayingSo: changed.filter((c) => c.status === 'rejected' && saysSo(c.rejectionReasons?.join(' '))).length,
        promotionOfChangedFile: [refused.statusCode, saysSo(refused.json().message)],
        rollbackTo: [rollback.statusCode, rollback.json().promoted?.id],
        statuses: after.map((c) => c.status),
      }).toEqual({
        changed: 3,
        changedAndAccepted: 0,
        changedOnFeed: 0,
        changedRejectedSayingSo: 3,
        promotionOfChangedFile: [409, true],
        rollbackTo: [200, rollbackTarget!.id],
        statuses: ['rejected', 'promoted', 'rejected', 'rejected', 'rolled_back'],
      });
    } finally {
      await workers.close();
    }
  });
});
