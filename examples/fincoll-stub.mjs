#!/usr/bin/env node
// A stand-in for FinColl, the inference service, for deploy tests: loads the checkpoint named by
// CAELUM_CHECKPOINT_PATH, then serves GET /health and GET /predict?symbol= on CAELUM_TEST_PORT.
// --load-ms MS simulates the time the real service takes to load a model.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { flags, rng } from './protocol.mjs';

const f = flags();
const port = Number(process.env.CAELUM_TEST_PORT ?? 8002);
const loadMs = Number(f['load-ms'] ?? 300);
let model;
setTimeout(() => {
  model = JSON.parse(readFileSync(process.env.CAELUM_CHECKPOINT_PATH, 'utf8'));
  console.log(`loaded ${process.env.CAELUM_CHECKPOINT_LABEL}`);
}, loadMs);

http
  .createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${port}`);
    const send = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (url.pathname === '/health') return model ? send(200, { status: 'ok', checkpoint: process.env.CAELUM_CHECKPOINT_LABEL }) : send(503, { status: 'loading' });
    if (url.pathname === '/predict' && model) {
      const symbol = url.searchParams.get('symbol') ?? 'SPY';
      const random = rng(`${symbol}:${process.env.CAELUM_CHECKPOINT_ID}`);
      // Right about as often as the checkpoint's accuracy says.
      const correct = random() < (model.metrics?.val_accuracy ?? 0.5);
      return send(200, { symbol, direction: random() < 0.5 ? 'up' : 'down', correct });
    }
    send(404, { error: 'not found' });
  })
  .listen(port, '127.0.0.1', () => console.log(`fincoll-stub listening on ${port}`));

process.on('SIGTERM', () => process.exit(0));
