#!/usr/bin/env node
// Example market-data syncer: "downloads" synthetic bars for one symbol and timeframe and writes
// them as CSV under CAELUM_OUTPUT_DIR; reports rows and the time range it covered. The worker
// holds the sync's lock and writes its fenced record; this program only fetches and writes.
// Runs as a cold job or as a warm runner (serve): the symbol, timeframe and output folder are
// read per job.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { emit, flags, rng, serve, sleep } from './protocol.mjs';

const f = flags();
const rows = Number(f.rows ?? 250);
const delayMs = Number(f['delay-ms'] ?? 100);
const STEP_MS = { '1m': 60e3, '5m': 300e3, '15m': 900e3, '30m': 1800e3, '1h': 3600e3, '4h': 14400e3, '1d': 86400e3, '1w': 604800e3 };

await serve(async (p) => {
  const symbol = p.symbol ?? 'SPY';
  const timeframe = p.timeframe ?? '1d';
  const stepMs = STEP_MS[timeframe] ?? 86400e3;
  const random = rng(`${symbol}:${timeframe}`);

  await sleep(delayMs);
  const end = Math.floor(Date.now() / stepMs) * stepMs;
  const start = end - (rows - 1) * stepMs;
  let price = 100;
  const lines = ['time,open,high,low,close,volume'];
  for (let i = 0; i < rows; i++) {
    const open = price;
    price *= 1 + (random() - 0.5) * 0.02;
    lines.push([new Date(start + i * stepMs).toISOString(), open.toFixed(2), Math.max(open, price).toFixed(2), Math.min(open, price).toFixed(2), price.toFixed(2), Math.round(random() * 1e6)].join(','));
  }
  const outDir = process.env.CAELUM_OUTPUT_DIR ?? path.resolve('var/outputs');
  mkdirSync(outDir, { recursive: true });
  writeFileSync(path.join(outDir, `${symbol}-${timeframe}.csv`), lines.join('\n') + '\n');
  emit('progress', { percent: 100, rows });
  console.log(`synced ${rows} ${timeframe} bars of ${symbol}`);
  emit('result', { metrics: { rows }, symbol, timeframe, from: new Date(start).toISOString(), to: new Date(end).toISOString() });
});
