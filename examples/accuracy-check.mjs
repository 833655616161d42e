#!/usr/bin/env node
// Example accuracy check of a deploy test: asks the candidate service at CAELUM_SERVICE_URL for
// predictions over a set of symbols and reports the share it got right.
import { emit, flags } from './protocol.mjs';

const base = process.env.CAELUM_SERVICE_URL;
const samples = Number(flags().samples ?? 200);
let correct = 0;
for (let i = 0; i < samples; i++) {
  const res = await fetch(`${base}/predict?symbol=S${i}`);
  if (!res.ok) {
    console.error(`predict failed: ${res.status}`);
    process.exit(1);
  }
  if ((await res.json()).correct) correct++;
}
const accuracy = +(correct / samples).toFixed(4);
console.log(`${correct}/${samples} predictions right`);
emit('result', { metrics: { val_accuracy: accuracy, prediction_accuracy: accuracy } });
