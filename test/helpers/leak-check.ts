// After every test file: fails the file when something it started is still open — a Redis or
// Postgres connection (a HostWorker, a queue set, a scheduler's harness, a pool), a listening
// server, a child process. Each file runs in a process of its own, so what is open at its end and
// was not open at its start was left by it. Closing is asynchronous (a socket ends a tick after
// quit resolves), so the check allows a short settling time before it fails.
//
// Timers are not counted: Node's count of active timers moved under vitest's own hook timers in
// a way that let a leaked setInterval pass, and a check that can pass a leak is worse than none.
// A worker or scheduler left running keeps its connections open, which this does catch.
import { afterAll, beforeAll } from 'vitest';

const WATCHED: Record<string, string> = {
  TCPSocketWrap: 'TCP connection (Redis, Postgres or HTTP client)',
  TCPServerWrap: 'listening TCP server',
  ProcessWrap: 'child process',
};
const SETTLE_MS = 3_000;

function counts(): Map<string, number> {
  const found = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) if (type in WATCHED) found.set(type, (found.get(type) ?? 0) + 1);
  return found;
}

function leaks(baseline: Map<string, number>): string[] {
  return [...counts()]
    .map(([type, n]) => [type, n - (baseline.get(type) ?? 0)] as const)
    .filter(([, extra]) => extra > 0)
    .map(([type, extra]) => `${extra} × ${WATCHED[type]} (${type})`);
}

let baseline = new Map<string, number>();
beforeAll(() => {
  baseline = counts();
});

afterAll(async () => {
  const deadline = Date.now() + SETTLE_MS;
  let left = leaks(baseline);
  while (left.length > 0 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 50));
    left = leaks(baseline);
  }
  if (left.length > 0) {
    throw new Error(`this test file left open: ${left.join(', ')}. Close what it started (workers, schedulers, servers, connections) in its afterAll/afterEach.`);
  }
});
