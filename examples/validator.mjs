#!/usr/bin/env node
// Example validator: evaluates a checkpoint on held-out synthetic data and reports its metrics.
// It reads the checkpoint file named in its payload (when there is one) and scores it.
import { readFileSync } from 'node:fs';
import { emit, payload, rng, sleep } from './protocol.mjs';

const p = payload();
let base = 0.7;
if (p.checkpointPath) {
  const saved = JSON.parse(readFileSync(p.checkpointPath, 'utf8'));
  base = saved.metrics?.val_accuracy ?? base;
}
const random = rng(`${p.model ?? ''}:${p.checkpoint ?? ''}`);
await sleep(200);
const accuracy = +(base + (random() - 0.5) * 0.02).toFixed(4);
emit('progress', { percent: 100 });
console.log(`validated ${p.model ?? 'model'}: val_accuracy=${accuracy}`);
emit('result', { metrics: { val_accuracy: accuracy, prediction_accuracy: accuracy, health: 1 } });
