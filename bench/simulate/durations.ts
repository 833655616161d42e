// Learned run times, as src/workers/durations.ts keeps them: the newest run times of completed
// GPU jobs per queue, estimated by the policy's estimateFromSamples. The worker reads other hosts'
// runs at most every 10 s; here every host sees every completion at once.
import { SAMPLES } from '../../src/workers/durations.js';
import { estimateFromSamples } from '../../src/workers/policy/index.js';

export class DurationHistory {
  private readonly samples = new Map<string, number[]>();
  /** The estimate per queue until its next sample (estimateFromSamples sorts a copy each call). */
  private readonly cache = new Map<string, number | undefined>();

  record(queue: string, ms: number): void {
    const list = this.samples.get(queue) ?? [];
    list.unshift(Math.round(ms));
    if (list.length > SAMPLES) list.length = SAMPLES;
    this.samples.set(queue, list);
    this.cache.delete(queue);
  }

  estimate(queue: string): number | undefined {
    if (this.cache.has(queue)) return this.cache.get(queue);
    const e = estimateFromSamples(this.samples.get(queue) ?? []);
    this.cache.set(queue, e);
    return e;
  }
}
