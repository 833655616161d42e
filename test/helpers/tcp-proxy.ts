// A TCP relay in front of a real server that a test controls, to play a network fault between the
// service and Redis or Postgres:
// - cut(): the server refuses connections (and every open one breaks); restore() listens again;
// - blackHole(): connections are accepted and kept, but nothing is forwarded either way, as when
//   packets are dropped on the path; heal() forwards again, what was held included, as TCP
//   would deliver it once the path is back.
import net from 'node:net';

interface Link {
  client: net.Socket;
  upstream?: net.Socket;
}

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
    this.holding = true;
    for (const link of this.links) {
      link.client.unpipe();
      link.upstream?.unpipe();
      link.client.pause();
      link.upstream?.pause();
    }
  }

  /** Forwards again; bytes held while black-holed go through now. */
  heal(): void {
    this.holding = false;
    for (const link of this.links) this.forward(link);
  }

  /** Connections open through the relay now (black-holed ones included). */
  get openConnections(): number {
    return this.links.size;
  }

  private accept(client: net.Socket): void {
    const link: Link = { client };
    this.links.add(link);
    this.watch(link, client);
    if (this.holding) client.pause();
    else this.forward(link);
  }

  private forward(link: Link): void {
    if (!link.upstream) {
      link.upstream = net.connect(this.targetPort, this.targetHost);
      this.watch(link, link.upstream);
    }
    link.client.pipe(link.upstream);
    link.upstream.pipe(link.client);
  }

  /** Either side closing or failing ends the link, so no socket outlives its peer. */
  private watch(link: Link, socket: net.Socket): void {
    socket.on('error', () => this.drop(link));
    socket.on('close', () => this.drop(link));
  }

  private drop(link: Link): void {
    this.links.delete(link);
    link.client.destroy();
    link.upstream?.destroy();
  }
}
