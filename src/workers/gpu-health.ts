// What nvidia-smi and the kernel log say about the health of each GPU, and whether that keeps it
// out of service. Pure functions over text: gpu-health-check.ts runs nvidia-smi, follows the
// kernel log and keeps the state between checks.
//
// A value nvidia-smi cannot give ([N/A], [Not Supported]: a GeForce has no ECC counters, only
// Ampere and newer remap rows) or gives as garbage skips that check for that GPU, and what the
// check said before stands: a GPU is neither failed nor cleared on an answer that says nothing.
import type { Gpu } from './gpu-discovery.js';

/** Why a GPU is unhealthy; also the `reason` label of the caelum_gpu_unhealthy gauge. */
export type HealthKind = 'ecc' | 'retired-pages' | 'row-remapping' | 'temperature' | 'xid' | 'lost';
export const HEALTH_KINDS: readonly HealthKind[] = ['ecc', 'retired-pages', 'row-remapping', 'temperature', 'xid', 'lost'];

/** The reason text of each kind that holds a GPU now. */
export type Findings = Partial<Record<HealthKind, string>>;

/** What one check asks, in this order. The health fields may be dropped for a driver that does not know them. */
export const HEALTH_FIELDS = [
  'index',
  'uuid',
  'pci.bus_id',
  'ecc.errors.uncorrected.volatile.total',
  'retired_pages.pending',
  'remapped_rows.failure',
  'temperature.gpu',
] as const;
export const DROPPABLE_FIELDS: readonly string[] = HEALTH_FIELDS.slice(3);

export interface HealthReading {
  index: number;
  uuid?: string;
  /** Normalised (normalizeBusId), to match the kernel log's XID lines. */
  busId?: string;
  /** Absent when nvidia-smi gave no usable value. */
  uncorrectedEcc?: number;
  retiredPagesPending?: boolean;
  remapFailure?: boolean;
  temperatureC?: number;
}

/** A GPU nvidia-smi says it cannot reach ("Unable to determine the device handle for GPU…"). */
export interface Unreachable {
  busId?: string;
  index?: number;
  message: string;
}

export interface HealthAnswer {
  readings: HealthReading[];
  unreachable: Unreachable[];
}

export interface HealthLimits {
  maxTemperatureC: number;
  temperatureHysteresisC: number;
}

const UNREACHABLE = /unable to determine the device handle for gpu\s*(.*)$/i;
const BUS_ID = /(?:PCI:)?([0-9a-f]{1,8}:[0-9a-f]{1,2}:[0-9a-f]{1,2}(?:\.[0-7])?)/i;
const XID = /NVRM: Xid \((?:PCI:)?([0-9a-f]{1,8}:[0-9a-f]{1,2}:[0-9a-f]{1,2}(?:\.[0-7])?)\): (\d+)\b/i;

/**
 * A PCI address as `dddd:bb:dd`, lower case, without the function: nvidia-smi writes
 * `00000000:3B:00.0`, the driver's XID lines `PCI:0000:3b:00`.
 */
export function normalizeBusId(raw: string): string | undefined {
  const m = /^(?:PCI:)?([0-9a-f]{1,8}):([0-9a-f]{1,2}):([0-9a-f]{1,2})(?:\.[0-7])?$/i.exec(raw.trim());
  if (!m) return undefined;
  const [, domain, bus, device] = m as unknown as [string, string, string, string];
  const hex = (s: string, width: number) => parseInt(s, 16).toString(16).padStart(width, '0');
  return `${hex(domain, 4)}:${hex(bus, 2)}:${hex(device, 2)}`;
}

/** An XID line of the kernel log: `NVRM: Xid (PCI:0000:3b:00): 79, pid=…, GPU has fallen off the bus.` */
export function parseXid(line: string): { busId: string; xid: number } | undefined {
  const m = XID.exec(line);
  const busId = m?.[1] ? normalizeBusId(m[1]) : undefined;
  return busId && m?.[2] ? { busId, xid: Number(m[2]) } : undefined;
}

/** `Field "x" is not a valid field to query.`: the field an older driver does not know. */
export function rejectedField(output: string): string | undefined {
  return /Field "([^"]+)" is not a valid field to query/i.exec(output)?.[1];
}

const NOT_A_VALUE = /^\[?(n\/a|not supported|unknown error|insufficient permissions|gpu requires reset|gpu is lost)\]?$/i;

function count(value: string | undefined): number | undefined {
  if (value === undefined || NOT_A_VALUE.test(value) || !/^\d+(\.\d+)?$/.test(value)) return undefined;
  return Number(value);
}

function flag(value: string | undefined): boolean | undefined {
  const v = value?.toLowerCase();
  return v === 'yes' ? true : v === 'no' ? false : undefined;
}

/** Reads `nvidia-smi --query-gpu=<fields> --format=csv,noheader,nounits` output; skips lines that are not one. */
export function parseHealthAnswer(output: string, fields: readonly string[]): HealthAnswer {
  const readings: HealthReading[] = [];
  const unreachable: Unreachable[] = [];
  for (const raw of output.split('\n')) {
    const line = raw.trim();
    const lost = UNREACHABLE.exec(line);
    if (lost) {
      const bus = BUS_ID.exec(lost[1] ?? '')?.[1];
      const index = /^(\d+)\b/.exec(lost[1] ?? '')?.[1];
      const busId = bus ? normalizeBusId(bus) : undefined;
      unreachable.push({ ...(busId ? { busId } : index !== undefined ? { index: Number(index) } : {}), message: line });
      continue;
    }
    const values = line.split(',').map((v) => v.trim());
    if (values.length !== fields.length) continue;
    const get = (field: string) => values[fields.indexOf(field)];
    const index = get('index');
    if (index === undefined || !/^\d+$/.test(index)) continue;
    const uuid = get('uuid');
    const busId = normalizeBusId(get('pci.bus_id') ?? '');
    const uncorrectedEcc = count(get('ecc.errors.uncorrected.volatile.total'));
    const retiredPagesPending = flag(get('retired_pages.pending'));
    const remapFailure = flag(get('remapped_rows.failure'));
    const temperatureC = count(get('temperature.gpu'));
    readings.push({
      index: Number(index),
      ...(uuid && uuid.startsWith('GPU-') ? { uuid } : {}),
      ...(busId ? { busId } : {}),
      ...(uncorrectedEcc !== undefined ? { uncorrectedEcc } : {}),
      ...(retiredPagesPending !== undefined ? { retiredPagesPending } : {}),
      ...(remapFailure !== undefined ? { remapFailure } : {}),
      ...(temperatureC !== undefined ? { temperatureC } : {}),
    });
  }
  return { readings, unreachable };
}

/**
 * The reading of one of our GPUs: by UUID, else by index. nvidia-smi numbers the GPUs it can
 * reach, so when one drops out the next takes its index: an index whose UUID is another of our
 * GPUs' is not this one.
 */
export function readingFor(gpu: Gpu, readings: readonly HealthReading[], ourUuids: ReadonlySet<string>): HealthReading | undefined {
  const byUuid = gpu.uuid ? readings.find((r) => r.uuid === gpu.uuid) : undefined;
  if (byUuid) return byUuid;
  const byIndex = readings.find((r) => r.index === gpu.index);
  return byIndex && !(byIndex.uuid && ourUuids.has(byIndex.uuid)) ? byIndex : undefined;
}

/**
 * The nvidia-smi findings of a GPU after a reading, given those before it. A value the reading
 * lacks keeps its finding as it was. Heat holds a GPU above the limit and frees it only below the
 * limit minus the hysteresis, so a GPU at the line does not flap; its reason keeps the reading
 * that tripped it, so a GPU that stays hot is not reported anew at every degree.
 */
export function judge(reading: HealthReading, before: Findings, limits: HealthLimits): Findings {
  const after: Findings = {};
  const set = (kind: HealthKind, known: boolean, failing: boolean, reason: () => string) => {
    const previous = before[kind];
    if (!known) {
      if (previous) after[kind] = previous;
    } else if (failing) {
      after[kind] = kind === 'temperature' && previous ? previous : reason();
    }
  };
  const ecc = reading.uncorrectedEcc;
  set('ecc', ecc !== undefined, (ecc ?? 0) > 0, () => `${ecc} uncorrectable ECC error${ecc === 1 ? '' : 's'} since the driver loaded`);
  set('retired-pages', reading.retiredPagesPending !== undefined, reading.retiredPagesPending === true, () => 'retired pages pending: reset the GPU or reboot to retire them');
  set('row-remapping', reading.remapFailure !== undefined, reading.remapFailure === true, () => 'a row remapping failed: the GPU needs service');
  const t = reading.temperatureC;
  const { maxTemperatureC: max, temperatureHysteresisC: hysteresis } = limits;
  const hot = t !== undefined && (before.temperature ? t >= max - hysteresis : t > max);
  set('temperature', t !== undefined, hot, () => `${t} °C, over the limit of ${max} °C (leased again below ${max - hysteresis} °C)`);
  return after;
}
