// A seeded random source, so every run of a workload draws the same jobs (mulberry32).
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    let t = (this.state = (this.state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  }

  /** Exponential with this mean (Poisson inter-arrival times). */
  exponential(mean: number): number {
    return -Math.log(1 - this.next()) * mean;
  }

  /** Standard normal (Box-Muller). */
  normal(): number {
    return Math.sqrt(-2 * Math.log(1 - this.next())) * Math.cos(2 * Math.PI * this.next());
  }

  /** Lognormal with this median and shape: heavy-tailed run times. */
  lognormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal());
  }

  /** One of `items`, each as likely as its weight. */
  pick<T extends { weight: number }>(items: readonly T[]): T {
    const total = items.reduce((a, i) => a + i.weight, 0);
    let x = this.next() * total;
    for (const item of items) {
      x -= item.weight;
      if (x < 0) return item;
    }
    return items[items.length - 1]!;
  }
}
