// GET /api/fleet: the fleet as configured (hosts with their GPUs and pools, models with what
// validation asks of them), so a client can tell a host whose worker is down from one that is
// not in the fleet, and judge a checkpoint's metrics against its model's thresholds. Commands
// and paths stay out: they are the hosts' business, not a reader's.
import type { FastifyInstance } from 'fastify';
import type { LoadedFleet } from '../../config/load-fleet.js';

export function fleetView(fleet: LoadedFleet) {
  const poolsOf = (host: string) => Object.entries(fleet.pools).filter(([, hosts]) => hosts.includes(host)).map(([pool]) => pool);
  return {
    hosts: Object.entries(fleet.hosts).map(([id, h]) => ({
      id,
      description: h.description ?? null,
      gpus: h.gpus.map((g) => ({ index: g.index, name: g.name, memoryMiB: g.memoryMiB })),
      cpuSlots: h.cpuSlots,
      labels: h.labels,
      pools: poolsOf(id),
    })),
    pools: fleet.pools,
    models: Object.entries(fleet.models).map(([name, m]) => ({
      name,
      description: m.description ?? null,
      pool: m.pool,
      gpusPerRun: m.gpusPerRun,
      priorityClass: m.priorityClass,
      thresholds: m.thresholds,
      maxRegression: m.maxRegression,
      retention: m.retention,
      validation: m.validation,
      autoPromote: m.autoPromote,
      compareBeforePromotion: m.compareBeforePromotion ?? null,
      freshData: m.freshData ?? null,
      symbols: m.symbols,
    })),
  };
}

export async function fleetRoutes(app: FastifyInstance, deps: { fleet: LoadedFleet }): Promise<void> {
  // The config is fixed for the life of the process: built once.
  const view = fleetView(deps.fleet);
  app.get('/api/fleet', { config: { access: 'read' } }, async () => view);
}
