/**
 * A loopback TCP proxy that can cut a connection at a chosen moment, to produce the failures a
 * real network produces: an ACK lost after the gateway stored the message, a half-open socket.
 *
 * `cutOnNextServerData()`: the next bytes the gateway sends on any connection are not forwarded;
 * both sides are destroyed instead. To extend: add another arming method of the same shape.
 */
import { createServer, connect, type Server, type Socket } from 'node:net';

export class CuttingProxy {
  private server: Server | undefined;
  private readonly pairs = new Set<[Socket, Socket]>();
  private cutArmed = false;
  cuts = 0;
  port = 0;

  constructor(private readonly targetPort: number, private readonly targetHost = '127.0.0.1') {}

  async start(): Promise<string> {
    this.server = createServer((client) => {
      const upstream = connect(this.targetPort, this.targetHost);
      const pair: [Socket, Socket] = [client, upstream];
      this.pairs.add(pair);
      const end = () => { client.destroy(); upstream.destroy(); this.pairs.delete(pair); };
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => {
        if (this.cutArmed) {
          this.cutArmed = false;
          this.cuts++;
          end();
          return;
        }
        client.write(d);
      });
      client.on('close', end);
      upstream.on('close', end);
      client.on('error', end);
      upstream.on('error', end);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
    return `http://127.0.0.1:${this.port}`;
  }

  cutOnNextServerData(): void {
    this.cutArmed = true;
  }

  async close(): Promise<void> {
    for (const [a, b] of this.pairs) { a.destroy(); b.destroy(); }
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}
