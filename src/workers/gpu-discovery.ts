// Which GPUs a host may lease. Where nvidia-smi exists, the GPUs it reports are reconciled with
// the config: a configured GPU that is absent is not used (and the worker says so); one present
// but not configured is left alone, since the config decides what this scheduler may use.
// Where nvidia-smi does not exist (laptops, CI, the demo), the config's GPUs are taken as given.
// `computeApps` asks the same program which processes compute on which GPU (gpu-guard.ts).
import { execa } from 'execa';
import type { GpuConfig } from '../config/fleet-schema.js';
import type { Logger } from '../logger.js';

export interface Gpu {
  index: number;
  name: string;
  memoryMiB: number;
  /** nvidia-smi's UUID, used in CUDA_VISIBLE_DEVICES when known. */
  uuid?: string;
  utilizationPercent?: number;
}

export interface Discovery {
  gpus: Gpu[];
  source: 'nvidia-smi' | 'config';
  missing: number[];
  /** The program that answered, when the source is nvidia-smi. */
  nvidiaSmi?: string;
}

/** A process computing on a GPU, as `nvidia-smi --query-compute-apps` lists it. */
export interface ComputeApp {
  gpuUuid: string;
  pid: number;
  processName: string;
}

const QUERY = ['--query-gpu=index,name,memory.total,utilization.gpu,uuid', '--format=csv,noheader,nounits'];
const APPS_QUERY = ['--query-compute-apps=gpu_uuid,pid,process_name', '--format=csv,noheader,nounits'];

export function parseNvidiaSmi(csv: string): Gpu[] {
  return csv
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .map((line) => {
      const [index, name, memory, util, uuid] = line.split(',').map((f) => f.trim());
      const utilization = Number(util);
      return {
        index: Number(index),
        name: name ?? 'unknown',
        memoryMiB: Number(memory),
        ...(uuid ? { uuid } : {}),
        ...(Number.isFinite(utilization) ? { utilizationPercent: utilization } : {}),
      };
    })
    .filter((g) => Number.isInteger(g.index));
}

export async function discoverGpus(configured: GpuConfig[], logger: Logger, nvidiaSmi = 'nvidia-smi'): Promise<Discovery> {
  let output: string;
  try {
    const res = await execa(nvidiaSmi, QUERY, { timeout: 10_000 });
    output = res.stdout;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code !== 'ENOENT') logger.warn({ err }, 'nvidia-smi failed; using the GPUs the config declares');
    return { gpus: configured.map((g) => ({ ...g })), source: 'config', missing: [] };
  }
  const found = new Map(parseNvidiaSmi(output).map((g) => [g.index, g]));
  const gpus: Gpu[] = [];
  const missing: number[] = [];
  for (const want of configured) {
    const real = found.get(want.index);
    if (!real) {
      missing.push(want.index);
      continue;
    }
    gpus.push({ ...real, ...(want.uuid ? { uuid: want.uuid } : {}) });
  }
  if (missing.length) {
    logger.warn({ missing }, `configured GPU(s) ${missing.join(', ')} not reported by nvidia-smi: they will not be used`);
  }
  return { gpus, source: 'nvidia-smi', missing, nvidiaSmi };
}

export function parseComputeApps(csv: string): ComputeApp[] {
  return csv
    .split('\n')
    .map((line) => line.split(','))
    .map(([gpuUuid = '', pid, ...name]) => ({ gpuUuid: gpuUuid.trim(), pid: Number(pid), processName: name.join(',').trim() }))
    .filter((a) => a.gpuUuid !== '' && Number.isInteger(a.pid) && a.pid > 0);
}

/** The processes computing on this host's GPUs now; throws when nvidia-smi fails. */
export async function computeApps(nvidiaSmi: string): Promise<ComputeApp[]> {
  const res = await execa(nvidiaSmi, APPS_QUERY, { timeout: 10_000 });
  return parseComputeApps(res.stdout);
}
