// 6. Feed latency: 100 clients waiting on GET /api/checkpoints/feed?wait=30 across 2 APIs (two
// apps in this process listening on real loopback ports, same prefix and schema). A checkpoint is
// registered and validated with the registry's guarded writes, and the feed published
// (publishFeed): the checkpoint lifecycle's decide, taken apart so that the commit time can be
// read between the write and the wake-up; then the time from the decide commit to each response. Then the poll without wait, with If-None-Match, under autocannon: 304s
// per second, against a bare Fastify route answering 304 (the HTTP ceiling of this machine).
import http from 'node:http';
import Fastify from 'fastify';
import { Redis } from 'ioredis';
import { createCheckpointRepository } from '../src/registry/checkpoints.js';
import { publishFeed } from '../src/checkpoints/feed-signal.js';
import { sourcesOf } from '../src/checkpoints/transitions.js';
import { feedChannel } from '../src/queues/redis-names.js';
import { startBenchApi, READER } from './api.js';
import { NOOP_COMMAND } from './dispatch.js';
import { cpuFleet } from './fleets.js';
import {
  type BenchResult,
  Cleanup,
  createSchema,
  deletePrefix,
  fmt,
  percentile,
  preciseNow,
  REDIS_URL,
  runAutocannon,
  sleep,
  uniqueName,
  waitUntil,
} from './lib.js';

const CLIENTS = 100;
const CONNECTIONS = 32;

function get(url: string, headers: Record<string, string>, agent: http.Agent): Promise<{ status: number; at: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, at: preciseNow(), body }));
    });
    req.on('error', reject);
    req.setTimeout(40_000, () => req.destroy(new Error('timeout')));
  });
}

export async function feedBench(budgetMs: number): Promise<BenchResult> {
  const seconds = Math.max(2, Math.min(Number(process.env.BENCH_FEED_SECONDS || 5), Math.floor((budgetMs - 15_000) / 2000)));
  const cleanup = new Cleanup();
  try {
    const db = await createSchema('feed');
    cleanup.add(() => db.drop());
    const prefix = uniqueName('feed');
    cleanup.add(() => deletePrefix(prefix));
    const fleet = cpuFleet(1, NOOP_COMMAND);
    const apis = [await startBenchApi(fleet, prefix, db.schema), await startBenchApi(fleet, prefix, db.schema)];
    for (const a of apis) cleanup.add(() => a.close());
    const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS * 2 });
    cleanup.add(async () => agent.destroy());
    const auth = { authorization: `Bearer ${READER}` };
    const checkpoints = createCheckpointRepository(db.pool);
    const publisher = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    cleanup.add(async () => publisher.disconnect());

    // The cursor now (an empty feed: 0).
    const first = JSON.parse((await get(`${apis[0]!.url}/api/checkpoints/feed`, auth, agent)).body) as { cursor: string };
    const cursor = first.cursor;

    const waiting = Array.from({ length: CLIENTS }, (_, i) =>
      get(`${apis[i % apis.length]!.url}/api/checkpoints/feed?after=${cursor}&wait=30`, auth, agent),
    );
    await waitUntil('100 waiting feed requests', () => apis.reduce((a, x) => a + x.feed.waiting, 0) >= CLIENTS, 15_000);
    await sleep(200);

    const { checkpoint } = await checkpoints.register(
      {
        model: 'bench-model',
        versionMajor: 1,
        path: '/nonexistent/bench.pt',
        sizeBytes: 1,
        sha256: '0'.repeat(64),
        metrics: { val_accuracy: 0.7 },
        trainingJobId: 'bench-feed-1',
        trigger: { reason: 'api', by: 'bench' },
      },
      'bench',
    );
    const by = { actor: 'bench', reason: 'bench' };
    await checkpoints.setValidating(checkpoint.id, { ...by, from: sourcesOf('validating') });
    const { checkpoint: decided } = await checkpoints.setVerdict(checkpoint.id, 'validated', {
      ...by,
      from: sourcesOf('validated'),
      metrics: { val_accuracy: 0.7 },
      reasons: [],
    });
    const committedAt = preciseNow();
    await publishFeed(publisher, prefix, decided.model, decided.feedSeq!);
    const answers = await Promise.all(waiting);
    const latencies = answers.map((a) => a.at - committedAt);
    const got = answers.filter((a) => a.status === 200 && (JSON.parse(a.body) as { checkpoints: unknown[] }).checkpoints.length === 1).length;

    // Baseline for the wake-up: a bare Redis publish to a subscriber, same Redis.
    const sub = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    cleanup.add(async () => sub.disconnect());
    await sub.subscribe(`${feedChannel(prefix)}-probe`);
    const pubsub: number[] = [];
    for (let i = 0; i < 50; i++) {
      const received = new Promise<number>((r) => sub.once('message', () => r(preciseNow())));
      const t = preciseNow();
      await publisher.publish(`${feedChannel(prefix)}-probe`, 'x');
      pubsub.push((await received) - t);
    }

    // 304s under load.
    const etagHeader = await new Promise<string>((resolve, reject) => {
      http
        .get(`${apis[0]!.url}/api/checkpoints/feed?after=${decided.feedSeq}`, { headers: auth, agent }, (res) => {
          res.resume();
          res.on('end', () => resolve(String(res.headers.etag)));
        })
        .on('error', reject);
    });
    const ac = await runAutocannon(
      {
        url: `${apis[0]!.url}/api/checkpoints/feed?after=${decided.feedSeq}`,
        connections: CONNECTIONS,
        duration: seconds,
        headers: { ...auth, 'if-none-match': etagHeader },
      },
      (seconds + 30) * 1000,
    );
    const bare = Fastify();
    bare.get('/feed', async (request, reply) => {
      void reply.header('etag', etagHeader).header('cache-control', 'no-cache');
      if (request.headers['if-none-match'] === etagHeader) return reply.status(304).send();
      return { checkpoints: [], cursor: '0' };
    });
    const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' });
    cleanup.add(() => bare.close());
    const acBare = await runAutocannon(
      { url: `${bareUrl}/feed`, connections: CONNECTIONS, duration: seconds, headers: { 'if-none-match': etagHeader } },
      (seconds + 30) * 1000,
    );
    const rate304 = ((ac.statusCodes['304'] ?? 0) / ac.total) * ac.requestsPerSec;
    const bare304 = ((acBare.statusCodes['304'] ?? 0) / acBare.total) * acBare.requestsPerSec;
    const p99 = percentile(latencies, 99);
    return {
      rows: [
        {
          figure: `6. feed: decide commit -> response, ${CLIENTS} waiting clients on 2 APIs, p50 / p99 ms`,
          ours: `${fmt(percentile(latencies, 50), 2)} / ${fmt(p99, 2)} (${got}/${CLIENTS} got the checkpoint)`,
          baseline: `${fmt(percentile(pubsub, 50), 2)} / ${fmt(percentile(pubsub, 99), 2)} bare Redis publish -> subscriber`,
          ratio: `${fmt(p99 / percentile(pubsub, 99), 1)}x (p99)`,
          goal: `p99 < 250 ms: ${p99 < 250 && got === CLIENTS ? 'met' : 'MISSED'}`,
        },
        {
          figure: `6. feed: 304s per second, If-None-Match, no wait (${CONNECTIONS} connections, ${seconds} s)`,
          ours: `${fmt(rate304)} (p50 ${ac.p50} ms, p99 ${ac.p99} ms; ${Object.entries(ac.statusCodes).map(([k, v]) => `${k}: ${v}`).join(', ')})`,
          baseline: `${fmt(bare304)} bare Fastify route answering 304`,
          ratio: `${fmt(rate304 / bare304, 3)}x`,
          goal: `>= 5,000/s: ${rate304 >= 5000 ? 'met' : 'MISSED'}`,
        },
      ],
      notes: [
        `feed: the 2 APIs and the ${CLIENTS} clients (keep-alive agent) share the benchmark process; autocannon runs in its own process against API 1; decide() resolved = commit time.`,
      ],
    };
  } finally {
    await cleanup.run();
  }
}
