#!/usr/bin/env node
// Example trainer speaking the caelum-scheduler protocol: epochs with progress lines, a real
// checkpoint file under CAELUM_OUTPUT_DIR, its metrics, and a final result.
// Flags (from workers.config.ts): --epochs N --epoch-ms MS --fail-at-epoch K --crash-at-epoch K
// The job's params (CAELUM_PAYLOAD) may set epochs, epoch_ms, fail_at_epoch, crash_at_epoch and
// target_accuracy; they are data the program reads, not flags.
import { mkdirSync, writeFileSync } from 'node:fs';
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
const model = process.env.CAELUM_MODEL ?? 'model';
const outDir = process.env.CAELUM_OUTPUT_DIR ?? path.resolve('var/outputs');
const random = rng(process.env.CAELUM_JOB_ID ?? 'seed');
const startedAt = Date.now();

console.log(`training ${model} for ${epochs} epochs on CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES ?? ''}`);
let loss = 1.2;
let acc = 0.5;
for (let epoch = 1; epoch <= epochs; epoch++) {
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
}

mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `${model}-e${epochs}.pt`);
const metrics = { val_accuracy: +acc.toFixed(4), loss: +loss.toFixed(4) };
writeFileSync(file, JSON.stringify({ model, epochs, metrics, weights: Array.from({ length: 256 }, () => random()) }));
emit('checkpoint', { path: file, metrics });
emit('result', {
  metrics,
  cudaVisibleDevices: process.env.CUDA_VISIBLE_DEVICES ?? null,
  startedAt,
  endedAt: Date.now(),
});
