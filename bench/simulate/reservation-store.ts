// Pool-wide reservations in memory, as src/queues/reservations.ts keeps them in Redis: one per
// queue, with a lease. A claim applies the policy's claimWins, the rule the Redis script applies.
import { claimWins, type PoolReservation } from '../../src/workers/policy/index.js';

interface Stored {
  reservation: PoolReservation;
  until: number;
}

export class ReservationStore {
  private readonly byQueue = new Map<string, Stored>();
  /** Claims that replaced another host's reservation. */
  takeovers = 0;

  private live(queue: string, now: number): PoolReservation | undefined {
    const s = this.byQueue.get(queue);
    return s && s.until > now ? s.reservation : undefined;
  }

  /** Claims or renews `bid`; returns the reservation that stands after it (the bid's when it won). */
  claim(bid: PoolReservation, now: number, leaseMs: number): PoolReservation {
    const current = this.live(bid.queue, now);
    if (!claimWins(current, bid.host, bid.expectedStartAt)) return current!;
    if (current && current.host !== bid.host) this.takeovers++;
    this.byQueue.set(bid.queue, { reservation: bid, until: now + leaseMs });
    return bid;
  }

  /** Gives a reservation up, if `host` holds it. */
  release(queue: string, host: string): void {
    if (this.byQueue.get(queue)?.reservation.host === host) this.byQueue.delete(queue);
  }

  /** The standing reservations of these queues, by queue. */
  read(queues: readonly string[], now: number): Map<string, PoolReservation> {
    const out = new Map<string, PoolReservation>();
    for (const q of queues) {
      const r = this.live(q, now);
      if (r) out.set(q, r);
    }
    return out;
  }
}
