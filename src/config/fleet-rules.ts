// Checks across fields of a parsed fleet: references between hosts, pools, models and
// schedules, and whether every model can actually be placed somewhere.
import { Cron } from 'croner';
import type { ErrorDetail } from './config-error.js';
import type { Fleet } from './fleet-schema.js';

export function checkFleetRules(fleet: Fleet): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });

  for (const [hostId, host] of Object.entries(fleet.hosts)) {
    const seen = new Set<number>();
    host.gpus.forEach((gpu, i) => {
      if (seen.has(gpu.index)) add(`hosts.${hostId}.gpus.${i}.index`, `duplicate GPU index ${gpu.index}`);
      seen.add(gpu.index);
    });
  }

  for (const [pool, hostIds] of Object.entries(fleet.pools)) {
    hostIds.forEach((hostId, i) => {
      if (!(hostId in fleet.hosts)) add(`pools.${pool}.${i}`, `unknown host "${hostId}"`);
    });
  }

  const hostsOf = (pool: string) =>
    (fleet.pools[pool] ?? []).map((id) => fleet.hosts[id]).filter((h) => h !== undefined);

  for (const [model, m] of Object.entries(fleet.models)) {
    if (!(m.pool in fleet.pools)) {
      add(`models.${model}.pool`, `unknown pool "${m.pool}"`);
      continue;
    }
    const hosts = hostsOf(m.pool);
    const most = Math.max(0, ...hosts.map((h) => h.gpus.length));
    if (m.gpusPerRun > most) {
      add(
        `models.${model}.gpusPerRun`,
        `needs ${m.gpusPerRun} GPUs per run but no host of pool "${m.pool}" has more than ${most}`,
      );
    }
    if (m.gpusPerRun === 0 && !hosts.some((h) => h.cpuSlots > 0)) {
      add(`models.${model}.pool`, `trains on CPU but no host of pool "${m.pool}" has a CPU slot`);
    }
    if (m.validation === 'deploy-test' && !m.deployTest) {
      add(`models.${model}.deployTest`, 'required when validation is "deploy-test"');
    }
    if (!hosts.some((h) => h.cpuSlots > 0)) {
      add(`models.${model}.pool`, `no host of pool "${m.pool}" has a CPU slot for its deploy tests`);
    }
  }

  for (const kind of ['backtest', 'dataSync'] as const) {
    const pool = fleet[kind].pool;
    if (!(pool in fleet.pools)) add(`${kind}.pool`, `unknown pool "${pool}"`);
    else if (!hostsOf(pool).some((h) => h.cpuSlots > 0)) {
      add(`${kind}.pool`, `no host of pool "${pool}" has a CPU slot`);
    }
  }

  for (const [name, s] of Object.entries(fleet.schedules)) {
    if (!isTimeZone(s.timezone)) add(`schedules.${name}.timezone`, `unknown time zone "${s.timezone}"`);
    else if (s.cron !== undefined) {
      const reason = cronProblem(s.cron, s.timezone);
      if (reason) add(`schedules.${name}.cron`, `cannot parse "${s.cron}": ${reason}`);
    }
    if (s.enqueue.kind === 'training' && !(s.enqueue.model in fleet.models)) {
      add(`schedules.${name}.enqueue.model`, `unknown model "${s.enqueue.model}"`);
    }
  }
  return problems;
}

export function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/** Why croner refuses a cron expression, or undefined when it parses. */
export function cronProblem(expression: string, timezone: string): string | undefined {
  try {
    new Cron(expression, { timezone, paused: true }).stop();
    return undefined;
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
}
