// 2. Enqueue: POST /api/jobs/backtest under autocannon (a separate process, 32 connections)
// against the API listening on a real loopback port, versus queue.add from 32 concurrent callers
// in-process on the same queue: requests per second, p50 and p99 latency.
import { newJobId } from '../src/queues/placement.js';
import { startBenchApi, OPERATOR } from './api.js';
import { jobData, NOOP_COMMAND } from './dispatch.js';
import { cpuFleet } from './fleets.js';
import { type BenchResult, CAN_PIN, Cleanup, createSchema, deletePrefix, fmt, percentile, pinTo, runAutocannon, uniqueName } from './lib.js';

const CONNECTIONS = 32;

export async function enqueueBench(budgetMs: number): Promise<BenchResult> {
  const seconds = Math.max(2, Math.min(Number(process.env.BENCH_ENQUEUE_SECONDS || 5), Math.floor((budgetMs - 10_000) / 2000)));
  const cleanup = new Cleanup();
  try {
    const db = await createSchema('enqueue');
    cleanup.add(() => db.drop());
    const prefix = uniqueName('enqueue');
    cleanup.add(() => deletePrefix(prefix));
    const api = await startBenchApi(cpuFleet(2, NOOP_COMMAND), prefix, db.schema);
    cleanup.add(() => api.close());
    const queue = api.queues.get('backtest')!.queue;

    const body = JSON.stringify(jobData().payload);
    // One side of the comparison: the API under autocannon, then queue.add from 32 callers in
    // this process, for the same time. `pinned`: autocannon on core 0, this process (the API and
    // the in-process callers) on core 1, so the load generator does not take the API's core.
    const measure = async (pinned: boolean) => {
      const before = pinned ? await pinTo('1') : undefined;
      try {
        const ac = await runAutocannon(
          {
            url: `${api.url}/api/jobs/backtest`,
            method: 'POST',
            connections: CONNECTIONS,
            duration: seconds,
            headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
            body,
          },
          (seconds + 30) * 1000,
          pinned ? '0' : undefined,
        );
        await queue.drain(true);
        const latencies: number[] = [];
        const until = performance.now() + seconds * 1000;
        const t0 = performance.now();
        await Promise.all(
          Array.from({ length: CONNECTIONS }, async () => {
            while (performance.now() < until) {
              const s = performance.now();
              await queue.add('backtest', jobData(), { jobId: newJobId('backtest') });
              latencies.push(performance.now() - s);
            }
          }),
        );
        await queue.drain(true);
        return { ac, latencies, directRate: (latencies.length / (performance.now() - t0)) * 1000 };
      } finally {
        if (before) await pinTo(before);
      }
    };
    const rows: BenchResult['rows'] = [];
    for (const pinned of CAN_PIN ? [false, true] : [false]) {
      const { ac, latencies, directRate } = await measure(pinned);
      const created = ac.statusCodes['201'] ?? 0;
      const ratio = ac.requestsPerSec / directRate;
      const codes = Object.entries(ac.statusCodes).map(([k, v]) => `${k}: ${v}`).join(', ');
      const how = pinned ? ', autocannon on core 0, API and callers on core 1' : '';
      rows.push(
        {
          figure: `2. enqueue: req/s (${CONNECTIONS} connections, ${seconds} s${how})`,
          ours: `${fmt(ac.requestsPerSec)} POST /api/jobs/backtest (${codes}; errors ${ac.errors})`,
          baseline: `${fmt(directRate)} queue.add in-process`,
          ratio: `${fmt(ratio, 3)}x`,
          goal: `>= 0.5x: ${ratio >= 0.5 && created === ac.total ? 'met' : 'MISSED'}`,
        },
        {
          figure: `2. enqueue: latency p50 / p99 (ms${how})`,
          ours: `${fmt(ac.p50)} / ${fmt(ac.p99)}`,
          baseline: `${fmt(percentile(latencies, 50), 2)} / ${fmt(percentile(latencies, 99), 2)}`,
          ratio: `${fmt(ac.p99 / percentile(latencies, 99), 2)}x (p99)`,
          goal: `p99 < 20 ms: ${ac.p99 < 20 ? 'met' : 'MISSED'}`,
        },
      );
    }
    return {
      rows,
      notes: [
        `enqueue: autocannon in its own process against the API on 127.0.0.1 (app.listen port 0); logger at "error"; ${seconds} s per side.` +
          (CAN_PIN ? ' Run twice: unpinned, then pinned with taskset (autocannon on core 0, the API and the in-process callers on core 1; Redis unpinned).' : ''),
      ],
    };
  } finally {
    await cleanup.run();
  }
}
