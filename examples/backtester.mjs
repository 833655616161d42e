#!/usr/bin/env node
// Example backtester: walks synthetic daily bars per symbol with a moving-average crossover and
// reports sharpe ratio, total return, max drawdown, win rate and trades, per symbol and overall.
// Runs as a cold job or as a warm runner (serve): everything a job decides is read per job.
import { readFileSync } from 'node:fs';
import { emit, flags, JobFailure, rng, serve, sleep } from './protocol.mjs';

const f = flags();
const bars = Number(f.bars ?? 500);
const barMs = Number(f['bar-ms'] ?? 0);

// A better checkpoint trades a little better: its accuracy tilts the daily returns it captures.
function edgeOf(checkpointPath) {
  if (!checkpointPath) return 0;
  try {
    const saved = JSON.parse(readFileSync(checkpointPath, 'utf8'));
    return ((saved.metrics?.val_accuracy ?? 0.5) - 0.5) * 0.004;
  } catch {
    return 0; // a checkpoint this example cannot read trades without an edge
  }
}

function backtest(symbol, p, edge) {
  // The same bars for every checkpoint of a symbol and window, so two checkpoints compare fairly.
  const random = rng(`${symbol}:${p.timeframe ?? ''}:${p.window?.from ?? ''}:${p.window?.to ?? ''}`);
  let price = 100;
  const closes = [];
  for (let i = 0; i < bars; i++) {
    price *= 1 + (random() - 0.48) * 0.04;
    closes.push(price);
  }
  let position = 0;
  let entry = 0;
  let equity = 1;
  let peak = 1;
  let maxDrawdown = 0;
  const returns = [];
  const trades = [];
  for (let i = 20; i < closes.length; i++) {
    const fast = closes.slice(i - 5, i).reduce((a, b) => a + b) / 5;
    const slow = closes.slice(i - 20, i).reduce((a, b) => a + b) / 20;
    const r = closes[i] / closes[i - 1] - 1;
    const daily = position * (r + edge);
    returns.push(daily);
    equity *= 1 + daily;
    peak = Math.max(peak, equity);
    maxDrawdown = Math.max(maxDrawdown, 1 - equity / peak);
    if (position === 0 && fast > slow) {
      position = 1;
      entry = closes[i];
    } else if (position === 1 && fast < slow) {
      position = 0;
      trades.push(closes[i] / entry - 1);
    }
  }
  const mean = returns.reduce((a, b) => a + b, 0) / returns.length;
  const sd = Math.sqrt(returns.reduce((a, b) => a + (b - mean) ** 2, 0) / returns.length) || 1e-9;
  return {
    symbol,
    sharpe_ratio: +((mean / sd) * Math.sqrt(252)).toFixed(4),
    total_return: +(equity - 1).toFixed(4),
    max_drawdown: +maxDrawdown.toFixed(4),
    win_rate: trades.length ? +(trades.filter((t) => t > 0).length / trades.length).toFixed(4) : 0,
    trades: trades.length,
  };
}

await serve(async (p) => {
  const symbols = p.symbols ?? ['SPY'];
  const edge = edgeOf(process.env.CAELUM_CHECKPOINT_PATH);
  const results = [];
  for (const [i, symbol] of symbols.entries()) {
    // "NODATA" stands for a symbol the data source does not have: the run fails, as a real one would.
    if (symbol === 'NODATA') throw new JobFailure(`no bars for ${symbol}`);
    if (barMs) await sleep(barMs * bars);
    results.push(backtest(symbol, p, edge));
    emit('progress', { done: i + 1, total: symbols.length, percent: Math.round(((i + 1) / symbols.length) * 100), symbol });
    console.log(`backtested ${symbol}`);
  }
  const avg = (k) => +(results.reduce((a, r) => a + r[k], 0) / results.length).toFixed(4);
  emit('result', {
    metrics: {
      sharpe_ratio: avg('sharpe_ratio'),
      total_return: avg('total_return'),
      max_drawdown: avg('max_drawdown'),
      win_rate: avg('win_rate'),
      trades: results.reduce((a, r) => a + r.trades, 0),
    },
    symbols: results,
  });
});
