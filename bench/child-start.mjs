// The child of the start-latency benchmark: reports, as its first act, when it started running
// (wall clock with sub-millisecond precision), in the job protocol's result event.
const startedAt = performance.timeOrigin + performance.now();
process.stdout.write(JSON.stringify({ event: 'result', metrics: { startedAt } }) + '\n');
