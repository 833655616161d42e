// Where nvidia-smi exists, a worker leases no GPU that fails its health check: uncorrectable ECC
// errors since the driver loaded, retired pages pending, a failed row remapping, a temperature
// over the limit, an XID in the kernel log within the hold time, or nvidia-smi no longer
// reaching it. One `nvidia-smi --query-gpu` a period (gpu-health.ts judges its answer), on the
// same period and stale-before-dispatch path as gpu-guard.ts; the kernel log, when configured,
// is read from where the last check left it (kernel-log.ts).
//
// An XID is an event, not a state: a GPU is held for `xidHoldSeconds` after the last one seen on
// it, since one check period (seconds) would free it before anyone could look, while the ECC,
// remapping and heat readings say themselves when the GPU is well again.
//
// When nvidia-smi fails, the last answer stands, as in gpu-guard.ts. A driver that rejects a
// field (older drivers know no `remapped_rows.*`) has that field dropped once and for all, and the
// check goes on without it.
import { execa } from 'execa';
import type { GpuHealthConfig } from '../config/gpu-health-schema.js';
import type { Logger } from '../logger.js';
import type { Metrics } from '../metrics.js';
import type { GpuUnhealthy } from '../queues/worker-status.js';
import type { Gpu } from './gpu-discovery.js';
import { DROPPABLE_FIELDS, HEALTH_FIELDS, HEALTH_KINDS, judge, parseHealthAnswer, parseXid, readingFor, rejectedField, type Findings, type HealthAnswer } from './gpu-health.js';
import { KernelLogTail } from './kernel-log.js';
import { PeriodicCheck } from './periodic-check.js';

export interface GpuHealthCheckOptions {
  nvidiaSmi: string;
  gpus: readonly Gpu[];
  periodMs: number;
  config: GpuHealthConfig;
  host: string;
  metrics: Metrics;
  /** Called with the unhealthy GPUs (by index) whenever they or their reasons change. */
  onChange(unhealthy: ReadonlyMap<number, GpuUnhealthy>): void;
  log: Logger;
}

interface XidHold {
  untilMs: number;
  reason: string;
}

export class GpuHealthCheck {
  private readonly check: PeriodicCheck;
  private readonly kernelLog: KernelLogTail | undefined;
  private fields: string[] = [...HEALTH_FIELDS];
  /** What nvidia-smi said of each GPU, by index. */
  private readonly findings = new Map<number, Findings>();
  private readonly xids = new Map<number, XidHold>();
  /** Our GPUs by normalised PCI bus id, as nvidia-smi last gave it. */
  private readonly byBusId = new Map<string, number>();
  private readonly ourUuids: ReadonlySet<string>;
  private unhealthy = new Map<number, GpuUnhealthy>();
  private lastError = '';

  constructor(private readonly opts: GpuHealthCheckOptions) {
    this.check = new PeriodicCheck(opts.periodMs, () => this.read());
    this.ourUuids = new Set(opts.gpus.flatMap((g) => (g.uuid ? [g.uuid] : [])));
    if (opts.config.kernelLog) this.kernelLog = new KernelLogTail(opts.config.kernelLog, opts.log);
  }

  async start(): Promise<void> {
    for (const gpu of this.opts.gpus) this.measure(gpu.index, {});
    await this.kernelLog?.start();
    await this.check.start();
  }

  /** Checks again unless the last check is younger than a period. */
  fresh(): Promise<void> {
    return this.check.fresh();
  }

  async close(): Promise<void> {
    await this.check.close();
    await this.kernelLog?.close();
  }

  private async read(): Promise<void> {
    try {
      const answer = await this.ask();
      if (answer) this.apply(answer);
      if (this.kernelLog) this.readXids(await this.kernelLog.read());
      this.publish();
    } catch (err) {
      this.opts.log.error({ err }, 'GPU health check failed');
    }
  }

  /** nvidia-smi's answer; undefined when it failed and said nothing about any GPU. */
  private async ask(): Promise<(HealthAnswer & { complete: boolean }) | undefined> {
    const res = await execa(this.opts.nvidiaSmi, [`--query-gpu=${this.fields.join(',')}`, '--format=csv,noheader,nounits'], { timeout: 10_000, reject: false });
    const output = `${res.stdout}\n${res.stderr}`;
    const rejected = res.failed ? rejectedField(output) : undefined;
    if (rejected && DROPPABLE_FIELDS.includes(rejected) && this.fields.includes(rejected)) {
      this.opts.log.warn({ field: rejected }, 'nvidia-smi does not know this field (an older driver); checking GPU health without it');
      this.fields = this.fields.filter((f) => f !== rejected);
      return this.ask();
    }
    const answer = parseHealthAnswer(output, this.fields);
    const complete = !res.failed && answer.readings.length > 0;
    if (!complete) {
      const message = (res.failed && res.message) || 'no GPU in its answer';
      if (message !== this.lastError) this.opts.log.warn({ err: message }, "nvidia-smi --query-gpu failed; keeping the GPUs' health as it was");
      this.lastError = message;
      if (answer.readings.length === 0 && answer.unreachable.length === 0) return undefined;
    } else {
      this.lastError = '';
    }
    return { ...answer, complete };
  }

  /** A GPU without a reading keeps its findings, unless nvidia-smi says it cannot reach it or a complete answer leaves it out. */
  private apply({ readings, unreachable, complete }: HealthAnswer & { complete: boolean }): void {
    for (const gpu of this.opts.gpus) {
      const { lost: _lost, ...before } = this.findings.get(gpu.index) ?? {};
      const reading = readingFor(gpu, readings, this.ourUuids);
      if (reading) {
        if (reading.busId) this.byBusId.set(reading.busId, gpu.index);
        this.findings.set(gpu.index, judge(reading, before, this.opts.config));
        continue;
      }
      const cut = unreachable.find((u) => (u.busId !== undefined ? this.byBusId.get(u.busId) === gpu.index : u.index === gpu.index));
      if (cut) this.findings.set(gpu.index, { ...before, lost: `nvidia-smi cannot reach it: ${cut.message}` });
      else if (complete) this.findings.set(gpu.index, { ...before, lost: 'nvidia-smi does not report it (fallen off the bus?)' });
    }
  }

  private readXids(lines: readonly string[]): void {
    const { xidHoldSeconds, ignoreXids } = this.opts.config;
    const now = performance.now();
    for (const line of lines) {
      const event = parseXid(line);
      if (!event) continue;
      const gpu = this.byBusId.get(event.busId);
      if (gpu === undefined || ignoreXids.includes(event.xid)) {
        this.opts.log.info({ ...event, gpu, line }, 'XID in the kernel log that holds no GPU of this worker');
        continue;
      }
      const reason = `XID ${event.xid} in the kernel log at ${new Date().toISOString()}; leased again ${xidHoldSeconds} s after the last XID`;
      this.xids.set(gpu, { untilMs: now + xidHoldSeconds * 1000, reason });
    }
    for (const [gpu, hold] of this.xids) if (hold.untilMs <= now) this.xids.delete(gpu);
  }

  private publish(): void {
    const next = new Map<number, GpuUnhealthy>();
    const kinds = new Map<number, Findings>();
    for (const { index } of this.opts.gpus) {
      const xid = this.xids.get(index);
      const findings: Findings = { ...this.findings.get(index), ...(xid ? { xid: xid.reason } : {}) };
      kinds.set(index, findings);
      const reasons = HEALTH_KINDS.flatMap((k) => findings[k] ?? []);
      if (reasons.length) next.set(index, { reasons, since: this.unhealthy.get(index)?.since ?? new Date().toISOString() });
    }
    if (this.check.closed || sameHealth(next, this.unhealthy)) return;
    const { log } = this.opts;
    for (const [gpu, { reasons }] of next) {
      const was = this.unhealthy.get(gpu);
      if (!was) log.warn({ gpu, reasons }, 'not leasing a GPU: it failed its health check');
      else if (was.reasons.join('\n') !== reasons.join('\n')) log.warn({ gpu, reasons }, 'GPU still fails its health check, for other reasons');
    }
    for (const gpu of this.unhealthy.keys()) if (!next.has(gpu)) log.info({ gpu }, 'GPU healthy again; leasing it');
    for (const [gpu, findings] of kinds) this.measure(gpu, findings);
    this.unhealthy = next;
    this.opts.onChange(next);
  }

  private measure(gpu: number, findings: Findings): void {
    for (const reason of HEALTH_KINDS) this.opts.metrics.gpuUnhealthy.set({ host: this.opts.host, gpu: String(gpu), reason }, findings[reason] ? 1 : 0);
  }
}

function sameHealth(a: ReadonlyMap<number, GpuUnhealthy>, b: ReadonlyMap<number, GpuUnhealthy>): boolean {
  return a.size === b.size && [...a].every(([gpu, u]) => b.get(gpu)?.reasons.join('\n') === u.reasons.join('\n'));
}
