// Runs autocannon with the JSON options of argv[2] and prints a summary as one JSON line.
// A separate process, so the load generator does not share an event loop with the server.
import autocannon from 'autocannon';

const opts = JSON.parse(process.argv[2]);
const result = await autocannon(opts);
const statusCodes = {};
for (const [code, v] of Object.entries(result.statusCodeStats ?? {})) statusCodes[code] = v.count;
process.stdout.write(
  JSON.stringify({
    requestsPerSec: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    total: result.requests.total,
    errors: result.errors,
    timeouts: result.timeouts,
    statusCodes,
    durationSec: result.duration,
  }) + '\n',
);
