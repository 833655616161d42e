#!/usr/bin/env node
// Example validator: scores the checkpoint named by CAELUM_CHECKPOINT_PATH on held-out synthetic
// data and reports its metrics. The score tracks the checkpoint's own training accuracy, with a
// little noise, so a well-trained checkpoint passes and a poor one is rejected.
import { readFileSync } from 'node:fs';
import { emit, rng, sleep } from './protocol.mjs';

const file = process.env.CAELUM_CHECKPOINT_PATH;
let base = 0.7;
if (file) {
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  base = saved.metrics?.val_accuracy ?? base;
}
const random = rng(process.env.CAELUM_CHECKPOINT_ID ?? 'none');
await sleep(100);
const accuracy = +(base + (random() - 0.5) * 0.01).toFixed(4);
emit('progress', { percent: 100 });
console.log(`validated ${process.env.CAELUM_CHECKPOINT_LABEL ?? 'checkpoint'}: val_accuracy=${accuracy}`);
emit('result', { metrics: { val_accuracy: accuracy, prediction_accuracy: accuracy } });
