// An API in the benchmark's process, listening on a real loopback port (port 0), under the
// benchmark's own prefix and schema: the tests' harness (test/helpers/api.ts) plus listen().
// The benchmark owns the prefix and deletes it itself.
import { startApi, type ApiHarness } from '../test/helpers/api.js';
import type { LoadedFleet } from '../src/config/load-fleet.js';

export { OPERATOR, READER } from '../test/helpers/api.js';

export interface BenchApi extends ApiHarness {
  url: string;
}

export async function startBenchApi(fleet: LoadedFleet, prefix: string, schema: string, poolMax = 10): Promise<BenchApi> {
  const api = await startApi({ fleet, prefix, schema, shared: true, poolMax });
  const url = await api.app.listen({ port: 0, host: '127.0.0.1' });
  return { ...api, url };
}
