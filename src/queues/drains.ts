// Operator drains: a host, or one GPU of it, taken out of service (`POST /api/workers/{host}/drain`).
// They live in Redis, one hash per host, so they outlive a worker restart and every API process
// sees the same; each change is published on a channel naming the host, so its worker applies it
// at once (and re-reads every heartbeat period, in case it missed the message). A drain stops new
// starts; with `now` it also hands the running jobs it covers back to their queues.
import type { Redis } from 'ioredis';
import { drainChannel, drainsKey } from './redis-names.js';
import type { GpuDrain } from './worker-status.js';

export interface DrainRecord extends GpuDrain {
  /** Running jobs the drain covers are handed back, not left to finish. */
  now: boolean;
}

export interface HostDrains {
  /** The whole host: every GPU and every CPU slot. */
  host?: DrainRecord;
  /** Single GPUs, by index. */
  gpus: Map<number, DrainRecord>;
}

const HOST_FIELD = 'host';
const gpuField = (index: number) => `gpu:${index}`;

function parseRecord(raw: string): DrainRecord | undefined {
  try {
    const r = JSON.parse(raw) as Partial<DrainRecord>;
    if (typeof r.reason !== 'string' || typeof r.by !== 'string' || typeof r.at !== 'string') return undefined;
    return { reason: r.reason, by: r.by, at: r.at, now: r.now === true };
  } catch {
    return undefined;
  }
}

function parseDrains(hash: Record<string, string>): HostDrains {
  const drains: HostDrains = { gpus: new Map() };
  for (const [field, raw] of Object.entries(hash)) {
    const record = parseRecord(raw);
    if (!record) continue; // nothing of ours writes such a field
    if (field === HOST_FIELD) drains.host = record;
    const gpu = /^gpu:(\d+)$/.exec(field);
    if (gpu) drains.gpus.set(Number(gpu[1]), record);
  }
  return drains;
}

export async function readDrains(redis: Redis, prefix: string, host: string): Promise<HostDrains> {
  return parseDrains(await redis.hgetall(drainsKey(prefix, host)));
}

/** The drains of each of `hosts` (one round trip). */
export async function readAllDrains(redis: Redis, prefix: string, hosts: readonly string[]): Promise<Map<string, HostDrains>> {
  const pipeline = redis.pipeline();
  for (const host of hosts) pipeline.hgetall(drainsKey(prefix, host));
  const answers = (await pipeline.exec()) ?? [];
  return new Map(
    hosts.map((host, i) => {
      const [err, hash] = answers[i] ?? [new Error('no answer'), undefined];
      if (err) throw err;
      return [host, parseDrains(hash as Record<string, string>)];
    }),
  );
}

/** Drains the host (no `gpu`) or one GPU of it, replacing a drain already there; answers the host's drains. */
export async function drain(redis: Redis, prefix: string, host: string, gpu: number | undefined, record: DrainRecord): Promise<HostDrains> {
  const key = drainsKey(prefix, host);
  const field = gpu === undefined ? HOST_FIELD : gpuField(gpu);
  return settle(await redis.multi().hset(key, field, JSON.stringify(record)).hgetall(key).publish(drainChannel(prefix), host).exec(), 1);
}

/** Lifts the drain of one GPU, or (no `gpu`) every drain of the host; answers what is left. */
export async function undrain(redis: Redis, prefix: string, host: string, gpu: number | undefined): Promise<HostDrains> {
  const key = drainsKey(prefix, host);
  const lift = gpu === undefined ? redis.multi().del(key) : redis.multi().hdel(key, gpuField(gpu));
  return settle(await lift.hgetall(key).publish(drainChannel(prefix), host).exec(), 1);
}

function settle(answers: [Error | null, unknown][] | null, at: number): HostDrains {
  for (const [err] of answers ?? []) if (err) throw err;
  return parseDrains((answers?.[at]?.[1] ?? {}) as Record<string, string>);
}

/** A drain as a worker's status shows it: why, by whom, since when. */
export const gpuDrainOf = ({ reason, by, at }: DrainRecord): GpuDrain => ({ reason, by, at });

/** Why each of `gpus` is drained: its own drain, else the host's. */
export function drainedGpus(drains: HostDrains, gpus: readonly number[]): Map<number, GpuDrain> {
  const held = new Map<number, GpuDrain>();
  for (const index of gpus) {
    const record = drains.gpus.get(index) ?? drains.host;
    if (record) held.set(index, gpuDrainOf(record));
  }
  return held;
}

/** Whether a drain with `now` covers a job on these GPUs (none: a CPU slot), so it must be handed back. */
export function handsBack(drains: HostDrains, gpus: readonly number[]): boolean {
  return drains.host?.now === true || gpus.some((g) => drains.gpus.get(g)?.now === true);
}

/** The drains as JSON answers them: `{host, drained, gpus: [{gpu, ...}]}`. */
export function drainsView(host: string, drains: HostDrains) {
  return {
    host,
    drained: drains.host ?? null,
    gpus: [...drains.gpus].sort(([a], [b]) => a - b).map(([gpu, record]) => ({ gpu, ...record })),
  };
}
