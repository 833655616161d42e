// worker.gone and gpu.unhealthy, from the workers' statuses in Redis. A worker that stops beating
// without withdrawing (killed, hung, cut off from Redis) is recorded as lost by whoever lists the
// workers first (queues/worker-status.ts), and told once per worker instance. A GPU failing its
// health check is told once per episode: the id carries the instant its worker first saw it fail.
import { listWorkers, lostWorkersSince } from '../../queues/worker-status.js';
import { makeEvent, plain, type NotificationEvent } from '../events.js';
import type { NotificationSource } from './source.js';

export const workerHealth: NotificationSource = {
  name: 'workers',
  async read(ctx, sinceMs) {
    // Listing prunes the expired statuses into the lost record read next.
    const live = await listWorkers(ctx.redis, ctx.prefix);
    const events: NotificationEvent[] = [];
    for (const w of await lostWorkersSince(ctx.redis, ctx.prefix, sinceMs)) {
      const back = live.some((l) => l.host === w.host) ? '; another worker of this host is live' : '';
      events.push(
        makeEvent('worker.gone', [w.host, w.instance], w.noticedAt, `:skull: worker ${w.host} (instance ${w.instance}) stopped heartbeating without shutting down${back}; its jobs go back to their queues when their locks lapse`, {
          host: w.host,
          instance: w.instance,
        }),
      );
    }
    for (const w of live) {
      for (const gpu of w.gpus) {
        if (!gpu.unhealthy) continue;
        const since = Date.parse(gpu.unhealthy.since);
        events.push(
          makeEvent('gpu.unhealthy', [w.host, w.instance, gpu.index, since], since, `:thermometer: GPU ${gpu.index} (${plain(gpu.name, 60)}) of ${w.host} fails its health check and is not leased: ${gpu.unhealthy.reasons.map((r) => plain(r, 160)).join('; ')}`, {
            host: w.host,
            instance: w.instance,
            gpu: gpu.index,
            ...(gpu.uuid ? { uuid: gpu.uuid } : {}),
            reasons: gpu.unhealthy.reasons,
            since: gpu.unhealthy.since,
          }),
        );
      }
    }
    return events;
  },
};
