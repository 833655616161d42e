// POST /api/workers/{host}/drain and /undrain: an operator takes a host, or one GPU of it, out of
// service and back (src/queues/drains.ts). The host and GPU are checked against the fleet config,
// not the live workers, so a host can be drained while its worker is down.
import type { FastifyInstance } from 'fastify';
import type { Redis } from 'ioredis';
import type { z } from 'zod';
import type { LoadedFleet } from '../../config/load-fleet.js';
import { NotFoundError, ValidationError } from '../../errors.js';
import { drain, drainsView, undrain, type HostDrains } from '../../queues/drains.js';
import type { QueueSet } from '../../queues/queue-set.js';
import { parseInput } from '../../validation.js';
import { drainBody, undrainBody } from '../schemas.js';
import { actorOf } from '../auth.js';

export async function drainRoutes(app: FastifyInstance, deps: { fleet: LoadedFleet; queues: QueueSet }): Promise<void> {
  /** The host's GPU indexes, per the config; a host not in it is a 404. */
  const gpusOf = (host: string): number[] => {
    if (!Object.hasOwn(deps.fleet.hosts, host)) throw new NotFoundError(`no host "${host}" in the fleet config; known: ${Object.keys(deps.fleet.hosts).join(', ')}`);
    return deps.fleet.hosts[host]!.gpus.map((g) => g.index);
  };
  const checkGpu = (host: string, gpus: number[], gpu: number | undefined) => {
    if (gpu === undefined || gpus.includes(gpu)) return;
    const has = gpus.length ? `GPUs ${gpus.join(', ')}` : 'no GPU';
    throw new ValidationError(`invalid body: gpu: host "${host}" has ${has}`, [{ path: 'gpu', message: `host "${host}" has ${has}` }]);
  };

  /** Both routes: the host and GPU checked against the config, then `act` on Redis, answering the host's drains. */
  const route = <B extends { gpu?: number | undefined }>(
    action: 'drain' | 'undrain',
    schema: z.ZodType<B, unknown>,
    act: (redis: Redis, host: string, body: B, by: string) => Promise<HostDrains>,
  ) =>
    app.post<{ Params: { host: string } }>(`/api/workers/:host/${action}`, { config: { access: 'operate' } }, async (request) => {
      const { host } = request.params;
      const gpus = gpusOf(host);
      const body = parseInput(schema, request.body ?? {}, 'body');
      checkGpu(host, gpus, body.gpu);
      deps.queues.assertReachable();
      return drainsView(host, await act(deps.queues.connection, host, body, actorOf(request)));
    });

  const { prefix } = deps.queues;
  route('drain', drainBody, (redis, host, { gpu, reason, now }, by) => drain(redis, prefix, host, gpu, { reason, by, at: new Date().toISOString(), now }));
  route('undrain', undrainBody, (redis, host, { gpu }) => undrain(redis, prefix, host, gpu));
}
