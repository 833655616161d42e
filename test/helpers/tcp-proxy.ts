// A TCP relay in front of a real server that a test controls, to play network faults:
// - cut(): stop listening and break every connection (the server refuses connections);
// - blackHole(): keep every connection open and accept new ones, but forward nothing either way
//   (commands hang, as behind a partition); what is sent meanwhile is held, as TCP would keep
//   retransmitting it;
// - heal(): forward again, delivering what was held in order; restore() undoes a cut.
import net from 'node:net';

class Link {
  upstream: net.Socket | undefined;
  private readonly held: { to: 'client' | 'upstream'; chunk: Buffer }[] = [];

  constructor(
    readonly client: net.Socket,
    private readonly relay: TcpProxy,
  ) {
    client.on('data', (chunk: Buffer) => this.forward('upstream', chunk));
    client.on('end', () => this.upstream?.end());
    client.on('error', () => this.destroy());
    client.on('close', () => this.destroy());
  }

  /** Connects to the server (deferred while the link is black-holed, as a dropped SYN would be). */
  open(host: string, port: number): void {
    const upstream = net.connect(port, host);
    this.upstream = upstream;
    upstream.on('data', (chunk: Buffer) => this.forward('client', chunk));
    upstream.on('end', () => this.client.end());
    upstream.on('error', () => this.destroy());
    upstream.on('close', () => this.destroy());
  }

  private forward(to: 'client' | 'upstream', chunk: Buffer): void {
    if (this.relay.holed || !this.upstream) this.held.push({ to, chunk });
    else (to === 'client' ? this.client : this.upstream).write(chunk);
  }

  /** Delivers what was held while the link was black-holed. */
  flush(): void {
    for (const { to, chunk } of this.held.splice(0)) (to === 'client' ? this.client : this.upstream!).write(chunk);
  }

  destroy(): void {
    this.client.destroy();
    this.upstream?.destroy();
    this.relay.forget(this);
  }
}

export class TcpProxy {
  private server: net.Server | undefined;
  private readonly links = new Set<Link>();
  /** True while black-holed: connections stay open and nothing is forwarded. */
  holed = false;
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(port = 0): Promise<void> {
    this.server = net.createServer((client) => {
      const link = new Link(client, this);
      this.links.add(link);
      if (!this.holed) link.open(this.targetHost, this.targetPort);
    });
    await new Promise<void>((resolve) => this.server!.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  /** Stops listening and breaks every open connection: the server now refuses connections. */
  async cut(): Promise<void> {
    for (const link of [...this.links]) link.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    this.server = undefined;
  }

  /** Listens again on the same port. */
  restore(): Promise<void> {
    return this.start(this.port);
  }

  /** Keeps every connection (and accepts new ones) but forwards nothing, in either direction. */
  blackHole(): void {
    this.holed = true;
  }

  /** Forwards again: connects the links accepted meanwhile and delivers what was held, in order. */
  heal(): void {
    this.holed = false;
    for (const link of this.links) {
      if (!link.upstream) link.open(this.targetHost, this.targetPort);
      link.flush();
    }
  }

  forget(link: Link): void {
    this.links.delete(link);
  }
}
