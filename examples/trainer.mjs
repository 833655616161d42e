#!/usr/bin/env node
// Example trainer speaking the caelum-scheduler protocol: epochs with progress lines, a real
// checkpoint file under CAELUM_OUTPUT_DIR, its metrics, and a final result.
// Flags (from workers.config.ts): --epochs N --epoch-ms MS --fail-at-epoch K --crash-at-epoch K
// The job's params (CAELUM_PAYLOAD) may set epochs, epoch_ms, fail_at_epoch, crash_at_epoch,
// checkpoint_every and target_accuracy; they are data the program reads, not flags.
// It resumes: with CAELUM_RESUME_FROM (a checkpoint an earlier start reported) it goes on from
// the epoch after the one saved there. With checkpoint_every N it reports a checkpoint every N
// epochs (resume points; the final one is the job's). On SIGTERM it saves the last finished
// epoch as a checkpoint, reports it and exits 143: the grace checkpoint of a job handed back.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { emit, flags, payload, rng, sleep } from './protocol.mjs';

const f = flags();
const params = payload().params ?? {};
const num = (v, d) => (v === undefined || v === true ? d : Number(v));
const epochs = num(params.epochs ?? f.epochs, 5);
const epochMs = num(params.epoch_ms ?? f['epoch-ms'], 1000);
const failAt = num(params.fail_at_epoch ?? f['fail-at-epoch'], 0);
const crashAt = num(params.crash_at_epoch ?? f['crash-at-epoch'], 0);
const target = num(params.target_accuracy, 0.72);
const every = num(params.checkpoint_every, 0);
const model = process.env.CAELUM_MODEL ?? 'model';
const outDir = process.env.CAELUM_OUTPUT_DIR ?? path.resolve('var/outputs');
const random = rng(process.env.CAELUM_JOB_ID ?? 'seed');
const startedAt = Date.now();

let loss = 1.2;
let acc = 0.5;
let done = 0;
const resumeFrom = process.env.CAELUM_RESUME_FROM;
if (resumeFrom) {
  const saved = JSON.parse(readFileSync(resumeFrom, 'utf8'));
  ({ loss, acc } = saved.state);
  done = saved.epoch;
  console.log(`resuming from ${resumeFrom}: epoch ${done} done (CAELUM_RESUME_EPOCH=${process.env.CAELUM_RESUME_EPOCH ?? ''})`);
}
const firstEpoch = done + 1;

/** Writes the state after `epoch` as a checkpoint file and reports it. */
function save(epoch, name) {
  mkdirSync(outDir, { recursive: true });
  const file = path.join(outDir, `${model}-${name}.pt`);
  const metrics = { val_accuracy: +acc.toFixed(4), loss: +loss.toFixed(4) };
  writeFileSync(file, JSON.stringify({ model, epoch, epochs, metrics, state: { loss, acc }, weights: Array.from({ length: 256 }, () => random()) }));
  emit('checkpoint', { path: file, epoch, metrics });
  return metrics;
}

process.once('SIGTERM', () => {
  if (done >= firstEpoch) save(done, `grace-e${done}`);
  console.log(`stopping at epoch ${done} (SIGTERM)`);
  // Not 0: a stop is not a finished training (128 + SIGTERM, as the Python library exits).
  process.exit(143);
});

console.log(`training ${model} for ${epochs} epochs on CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES ?? ''}`);
for (let epoch = firstEpoch; epoch <= epochs; epoch++) {
  await sleep(epochMs);
  if (epoch === failAt) {
    console.error(`CUDA error: out of memory at epoch ${epoch} (simulated)`);
    process.exit(1);
  }
  if (epoch === crashAt) process.kill(process.pid, 'SIGKILL');
  loss = loss * (0.7 + random() * 0.1);
  acc = acc + (target - acc) * 0.5;
  const eta = Math.round(((epochs - epoch) * epochMs) / 1000);
  emit('progress', {
    epoch,
    epochs,
    percent: Math.round((epoch / epochs) * 100),
    etaSeconds: eta,
    metrics: { loss: +loss.toFixed(4), val_accuracy: +acc.toFixed(4) },
    pid: process.pid,
  });
  console.log(`epoch ${epoch}/${epochs} loss=${loss.toFixed(4)} val_accuracy=${acc.toFixed(4)}`);
  done = epoch;
  if (every > 0 && epoch % every === 0 && epoch < epochs) save(epoch, `e${epoch}`);
}

const metrics = save(epochs, `e${epochs}`);
emit('result', {
  metrics,
  cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null,
  startedAt,
  endedAt: Date.now(),
  firstEpoch,
});
