// How host workers wait for work, as Redis serves them: each blocks (one BZPOPMIN) on the BullMQ
// marker of every queue of its last decision's order plus a wake key of its own. A marker is one
// member of a sorted set per queue: setting it twice is setting it once. Redis hands a key's new
// member to the client that has been blocked on it longest; a client that blocks while one of its
// keys has a member pops the first such key (in argument order: queues, then the wake key) at once.
// So a job's arrival wakes one waiting host, a start re-adds the marker (BullMQ does after every
// take) and wakes the next, and nothing wakes a host that is not waiting on that queue.
export class WaitRoom {
  private readonly markers = new Set<string>();
  /** Per queue, the hosts blocked on its marker, longest-blocked first (a Set keeps insertion order). */
  private readonly waiting = new Map<string, Set<number>>();
  /** Per blocked host, the queues it waits on. */
  private readonly blockedOn = new Map<number, readonly string[]>();
  private readonly wakeKeys = new Set<number>();
  private readonly tokens = new Map<number, number>();

  constructor(private readonly woken: (host: number, popped: string | undefined) => void) {}

  /**
   * The host's BZPOPMIN: pops a marker or its wake key at once (calls `woken`, returns undefined)
   * or blocks; then returns a token that a timeout must present to end this very block.
   */
  block(host: number, queues: readonly string[]): number | undefined {
    for (const q of queues) {
      if (this.markers.delete(q)) {
        this.woken(host, q);
        return undefined;
      }
    }
    if (this.wakeKeys.delete(host)) {
      this.woken(host, undefined);
      return undefined;
    }
    this.blockedOn.set(host, queues);
    for (const q of queues) {
      let set = this.waiting.get(q);
      if (!set) this.waiting.set(q, (set = new Set()));
      set.add(host);
    }
    const token = (this.tokens.get(host) ?? 0) + 1;
    this.tokens.set(host, token);
    return token;
  }

  isBlocked(host: number): boolean {
    return this.blockedOn.has(host);
  }

  /** The block's timeout (the decision's wakeAt) came: ends it if it is still the same block. */
  timeout(host: number, token: number): void {
    if (this.tokens.get(host) !== token || !this.blockedOn.has(host)) return;
    this.unblock(host);
    this.woken(host, undefined);
  }

  /** ZADD marker 0 "0": a job was added, taken or given back. */
  mark(queue: string): void {
    if (this.markers.has(queue)) return;
    const first = this.waiting.get(queue)?.values().next();
    if (first && !first.done) {
      this.unblock(first.value);
      this.woken(first.value, queue);
      return;
    }
    this.markers.add(queue);
  }

  /** The host's own wake key: its capacity freed or its reservation was taken over. */
  wake(host: number): void {
    if (this.blockedOn.has(host)) {
      this.unblock(host);
      this.woken(host, undefined);
    } else this.wakeKeys.add(host);
  }

  private unblock(host: number): void {
    for (const q of this.blockedOn.get(host) ?? []) this.waiting.get(q)?.delete(host);
    this.blockedOn.delete(host);
  }
}
