// A TCP relay in front of a real server that a test controls, to play a network fault between the
// service and Redis or Postgres:
// - cut(): the server refuses connections (and every open one breaks); restore() listens again;
// - blackHole(): connections are accepted and kept, but nothing passes either way, as when
//   packets are dropped on the path; heal() lets traffic through again. What a peer sent
//   meanwhile arrives after the heal, followed by its close if it closed meanwhile: a kernel
//   goes on retransmitting what a closed socket had sent, so a request the client gave up on can
//   still reach the server late. A connection that never reached the server is forgotten.
import net from 'node:net';

interface Side {
  socket: net.Socket;
  /** Bytes read from this side while black-holed, for the other side. */
  held: Buffer[];
  collect?: (chunk: Buffer) => void;
}

interface Link {
  client: Side;
  upstream?: Side;
  /** A side closed while black-holed: the other learns of it at the heal. */
  closedWhileHeld: boolean;
}

const pairs = (link: Link): [Side, Side][] => (link.upstream ? [[link.client, link.upstream], [link.upstream, link.client]] : []);

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly links = new Set<Link>();
  private holding = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(port = 0): Promise<void> {
    this.server = net.createServer((client) => this.accept(client));
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Stops listening and breaks every open connection: the server now refuses connections. */
  async cut(): Promise<void> {
    this.holding = false;
    for (const link of this.links) this.drop(link);
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  /** Listens again on the same port. */
  restore(): Promise<void> {
    return this.start(this.port);
  }

  /** From now on nothing passes, on open connections or new ones; the sockets stay open. */
  blackHole(): void {
    if (this.holding) return;
    this.holding = true;
    for (const link of this.links) {
      this.hold(link.client, link.upstream);
      if (link.upstream) this.hold(link.upstream, link.client);
    }
  }

  /** Traffic passes again, held bytes first; a side that closed meanwhile closes now at the other end. */
  heal(): void {
    if (!this.holding) return;
    this.holding = false;
    for (const link of this.links) {
      if (!link.upstream && link.closedWhileHeld) this.drop(link);
      else if (link.closedWhileHeld) this.finish(link);
      else this.forward(link);
    }
  }

  private accept(socket: net.Socket): void {
    const link: Link = { client: { socket, held: [] }, closedWhileHeld: false };
    this.links.add(link);
    this.watch(link, socket);
    if (this.holding) this.hold(link.client, undefined);
    else this.forward(link);
  }

  /** Stops piping `from` and keeps what it sends, still reading so that a close is seen. */
  private hold(from: Side, to: Side | undefined): void {
    if (to) from.socket.unpipe(to.socket);
    from.collect = (chunk) => from.held.push(chunk);
    from.socket.on('data', from.collect);
    // unpipe() paused it, and a 'data' listener does not resume a paused stream.
    from.socket.resume();
  }

  private forward(link: Link): void {
    if (!link.upstream) {
      const socket = net.connect(this.targetPort, this.targetHost);
      link.upstream = { socket, held: [] };
      this.watch(link, socket);
    }
    for (const [from, to] of pairs(link)) {
      if (from.collect) from.socket.off('data', from.collect);
      from.collect = undefined;
      for (const chunk of from.held.splice(0)) to.socket.write(chunk);
      from.socket.pipe(to.socket);
    }
  }

  /** One side has closed: the other gets what was held for it, then the close. */
  private finish(link: Link): void {
    const sides = [link.client, link.upstream].filter((s): s is Side => s !== undefined);
    if (sides.every((s) => s.socket.destroyed)) {
      this.links.delete(link);
      return;
    }
    for (const [from, to] of pairs(link)) {
      if (to.socket.destroyed) continue;
      for (const chunk of from.held.splice(0)) to.socket.write(chunk);
      to.socket.end();
    }
  }

  /** A close ends the link gracefully (at the heal, while black-holed); an error breaks it. */
  private watch(link: Link, socket: net.Socket): void {
    socket.on('error', () => this.drop(link));
    socket.on('close', () => {
      if (this.holding) link.closedWhileHeld = true;
      else this.finish(link);
    });
  }

  private drop(link: Link): void {
    this.links.delete(link);
    link.client.socket.destroy();
    link.upstream?.socket.destroy();
  }
}
