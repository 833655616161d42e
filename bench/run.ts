// npm run bench: every benchmark in sequence, each with a time budget; a benchmark that fails or
// overruns prints its row as "error: …" and the run goes on. Ends with one markdown table and the
// machine, and exits 0 whatever the figures. Set BENCH_ONLY=dispatch,feed to run some of them.
import { dispatchBench } from './dispatch.js';
import { enqueueBench } from './enqueue.js';
import { startLatencyBench } from './start-latency.js';
import { gpuFleetBench } from './gpu-fleet.js';
import { schedulesBench } from './schedules.js';
import { feedBench } from './feed.js';
import { diagnoseBench } from './diagnose.js';
import { warmBench } from './warm.js';
import { cliLatencyBench } from './cli-latency.js';
import { workerRssBench } from './worker-rss.js';
import { redisOpsBench } from './redis-ops.js';
import { type Bench, type BenchResult, fmt, machine, type Row } from './lib.js';

const BENCHES: { name: string; figure: string; budgetMs: number; run: Bench }[] = [
  { name: 'dispatch', figure: '1./7. dispatch overhead and memory', budgetMs: 120_000, run: (b) => dispatchBench(b) },
  { name: 'enqueue', figure: '2. enqueue', budgetMs: 30_000, run: (b) => enqueueBench(b) },
  { name: 'start-latency', figure: '3. start latency', budgetMs: 70_000, run: (b) => startLatencyBench(b) },
  { name: 'gpu-fleet', figure: '4. GPU fleet', budgetMs: 240_000, run: (b) => gpuFleetBench(b) },
  { name: 'schedules', figure: '5. schedule fire accuracy', budgetMs: 30_000, run: (b) => schedulesBench(b) },
  { name: 'feed', figure: '6. feed', budgetMs: 35_000, run: (b) => feedBench(b) },
  { name: 'warm', figure: '9. warm runners', budgetMs: 180_000, run: (b) => warmBench(b) },
  { name: 'redis-ops', figure: '10. Redis cost', budgetMs: 200_000, run: (b) => redisOpsBench(b) },
  { name: 'diagnose', figure: 'diagnosis', budgetMs: 25_000, run: (b) => diagnoseBench(b) },
  // Both need a built dist/ (npm run build) and git, for the baseline commit.
  { name: 'worker-rss', figure: '7. memory, as deployed', budgetMs: 540_000, run: (b) => workerRssBench(b) },
  { name: 'cli-latency', figure: '8. CLI wall time', budgetMs: 240_000, run: (b) => cliLatencyBench(b) },
];

/** Past its budget plus this, a benchmark is abandoned (reported as an error). */
const GRACE_MS = 30_000;

process.on('unhandledRejection', (err) => console.error(`unhandled rejection (ignored): ${String(err)}`));

const cell = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

async function main(): Promise<void> {
  const only = process.env.BENCH_ONLY?.split(',').map((s) => s.trim());
  const started = Date.now();
  const rows: Row[] = [];
  const notes: string[] = [];
  for (const bench of BENCHES.filter((b) => !only || only.includes(b.name))) {
    const t = Date.now();
    console.error(`[bench] ${bench.name} (budget ${bench.budgetMs / 1000} s) ...`);
    let timer: NodeJS.Timeout | undefined;
    try {
      const result = await Promise.race([
        bench.run(bench.budgetMs),
        new Promise<BenchResult>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`overran its budget of ${bench.budgetMs / 1000} s (+${GRACE_MS / 1000} s grace)`)), bench.budgetMs + GRACE_MS);
        }),
      ]);
      rows.push(...result.rows);
      notes.push(...result.notes);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      rows.push({ figure: bench.figure, ours: `error: ${message.slice(0, 300)}`, baseline: '', ratio: '', goal: '' });
    } finally {
      clearTimeout(timer);
    }
    console.error(`[bench] ${bench.name} done in ${fmt((Date.now() - t) / 1000)} s`);
  }
  const total = (Date.now() - started) / 1000;
  // In the order of the figures (memory, 7, comes from the dispatch runs); diagnosis last.
  const rank = (r: Row) => Number(/^(\d+)\./.exec(r.figure)?.[1] ?? 99);
  rows.sort((a, b) => rank(a) - rank(b));
  const lines = [
    '',
    '## Notes',
    '',
    ...notes.map((n) => `- ${n}`),
    '',
    '## Machine',
    '',
    '```',
    await machine().catch((err: unknown) => `unknown (${String(err)})`),
    `total run time: ${fmt(total)} s`,
    '```',
    '',
    '## Results',
    '',
    '| figure | ours | baseline (same run) | ratio | goal |',
    '|---|---|---|---|---|',
    ...rows.map((r) => `| ${cell(r.figure)} | ${cell(r.ours)} | ${cell(r.baseline)} | ${cell(r.ratio)} | ${cell(r.goal)} |`),
    '',
  ];
  process.stdout.write(lines.join('\n'));
}

try {
  await main();
} catch (err) {
  console.error(`bench run failed: ${String(err)}`);
}
process.exit(0);
