// Many measurements in one growing Float64Array (millions of decision times fit without an
// object each), with the percentiles of the report.
export class Samples {
  private values = new Float64Array(1024);
  private n = 0;
  private sorted: Float64Array | undefined;

  get count(): number {
    return this.n;
  }

  add(value: number): void {
    if (this.n === this.values.length) {
      const bigger = new Float64Array(this.values.length * 2);
      bigger.set(this.values);
      this.values = bigger;
    }
    this.values[this.n++] = value;
    this.sorted = undefined;
  }

  /** The p-th percentile (nearest rank); NaN when empty. */
  percentile(p: number): number {
    if (this.n === 0) return NaN;
    this.sorted ??= this.values.slice(0, this.n).sort();
    return this.sorted[Math.min(this.n - 1, Math.max(0, Math.ceil((p / 100) * this.n) - 1))]!;
  }

  max(): number {
    return this.percentile(100);
  }
}
