// The newest feed sequence of each model, kept in memory so that a FinColl poll with nothing new
// (`If-None-Match` of the feed's own ETag) is answered 304 without asking Postgres. It is loaded
// from Postgres when the API starts (so a restart starts right), moved forward by the wake-up
// every API process already receives after a validation commits (feed-signal.ts: so another API
// process's validation is seen at once), and read again from Postgres after the subscription
// dropped and came back and every `refreshMs`, which bounds how long a wake-up that was never
// published (Redis away at that moment) can leave it behind. Until its first load succeeds it
// knows nothing, and the route asks Postgres as before.
import type { Logger } from '../logger.js';
import type { FeedSignal } from './feed-signal.js';

export interface FeedHeadsSource {
  feedHeads(): Promise<Map<string, number>>;
}

export const FEED_INDEX_REFRESH_MS = 10_000;

export class FeedIndex {
  private readonly newest = new Map<string, number>();
  private loaded = false;
  private refreshing: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly stop: (() => void)[] = [];
  private closed = false;

  private constructor(
    private readonly source: FeedHeadsSource,
    private readonly log: Logger,
  ) {}

  static async start(signal: FeedSignal, source: FeedHeadsSource, logger: Logger, refreshMs = FEED_INDEX_REFRESH_MS): Promise<FeedIndex> {
    const index = new FeedIndex(source, logger.child({ component: 'feed-index' }));
    // Listen before loading: a validation committed in between is in the load or in a message.
    index.stop.push(signal.onSeq((model, seq) => index.note(model, seq)));
    index.stop.push(signal.onResync(() => void index.refresh()));
    await index.refresh();
    index.timer = setInterval(() => void index.refresh(), refreshMs);
    index.timer.unref();
    return index;
  }

  /** The newest feed sequence of `model` (of every model when undefined); undefined: not known, ask Postgres. */
  newestSeq(model?: string): number | undefined {
    if (!this.loaded) return undefined;
    if (model !== undefined) return this.newest.get(model) ?? 0;
    let max = 0;
    for (const seq of this.newest.values()) if (seq > max) max = seq;
    return max;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
    for (const off of this.stop.splice(0)) off();
  }

  private note(model: string, seq: number): void {
    if (seq > (this.newest.get(model) ?? 0)) this.newest.set(model, seq);
  }

  private refresh(): Promise<void> {
    this.refreshing ??= this.source
      .feedHeads()
      .then((heads) => {
        if (this.closed) return;
        // Sequences only grow: a head read before a message that came first must not undo it.
        for (const [model, seq] of heads) this.note(model, seq);
        this.loaded = true;
      })
      .catch((err: unknown) => this.log.warn({ err }, 'could not read the feed heads; 304s come from Postgres until it answers'))
      .finally(() => (this.refreshing = undefined));
    return this.refreshing;
  }
}
