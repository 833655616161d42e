// The `gpuHealth` part of workers.config.ts: the settings of the worker's GPU health check
// (gpu-health-check.ts) that are a matter of policy: the temperature limit, the kernel log the
// driver's XIDs reach, which XIDs hold a GPU and for how long. ECC errors, pending retired pages
// and failed row remapping have none: any holds the GPU. Set for the fleet at the top level; a
// host may override any field under `hosts.<id>.gpuHealth`.
import { z } from 'zod';
import type { Fleet } from './fleet-schema.js';

/**
 * XIDs that say a program went wrong, not the GPU (NVIDIA's XID catalog: "debug the user
 * application", "informative only"): 13 graphics engine exception, 31 memory page fault, 43
 * GPU stopped processing, 45 preemptive cleanup, which the driver logs for every CUDA process
 * that is killed, as the worker does when it cancels a job.
 */
export const APPLICATION_XIDS = [13, 31, 43, 45];

const fields = {
  /** Above this, no new job is leased the GPU; again once it is below the limit minus the hysteresis. */
  maxTemperatureC: z.number().min(40, 'must be at least 40 °C').max(110, 'must be at most 110 °C'),
  temperatureHysteresisC: z.number().min(0).max(20, 'must be at most 20 °C'),
  /** A text kernel log the driver's `NVRM: Xid` lines reach (rsyslog's /var/log/kern.log). */
  kernelLog: z.string().startsWith('/', 'must be an absolute path such as /var/log/kern.log'),
  /** How long a GPU stays out of service after the last XID seen on it. */
  xidHoldSeconds: z.number().int('must be whole seconds').min(1).max(7 * 24 * 3600),
  /** XIDs that hold nothing. */
  ignoreXids: z.array(z.number().int().min(0)),
};

export const gpuHealthSchema = z
  .strictObject({
    maxTemperatureC: fields.maxTemperatureC.default(85),
    temperatureHysteresisC: fields.temperatureHysteresisC.default(5),
    kernelLog: fields.kernelLog.optional(),
    xidHoldSeconds: fields.xidHoldSeconds.default(600),
    ignoreXids: fields.ignoreXids.default(() => [...APPLICATION_XIDS]),
  })
  .prefault({});

export const hostGpuHealthSchema = z.strictObject(fields).partial().optional();

export type GpuHealthConfig = z.output<typeof gpuHealthSchema>;

/** The fleet's GPU health settings with a host's own on top. */
export function gpuHealthOf(fleet: Fleet, hostId: string): GpuHealthConfig {
  return { ...fleet.gpuHealth, ...fleet.hosts[hostId]?.gpuHealth };
}
