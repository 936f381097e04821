// A TCP proxy on loopback that slows what clients send (to `bytesPerSecond`), so a test can
// interrupt an upload part-way. Answers pass at full speed. Point a server's PUBLIC_URL at it and
// every upload URL the server hands out goes through it too.
import net from 'node:net';

export interface SlowProxy {
  url: string;
  /** Where to forward; set once the server behind it listens. */
  target: number;
  /** Upload speed limit; Infinity for none. */
  bytesPerSecond: number;
  /** Cuts every open connection, as a closed tab or a lost network would. */
  dropConnections(): void;
  close(): Promise<void>;
}

export async function startSlowProxy(bytesPerSecond: number): Promise<SlowProxy> {
  const sockets = new Set<net.Socket>();
  const proxy: SlowProxy = {
    url: '',
    target: 0,
    bytesPerSecond,
    dropConnections: () => {
      for (const s of sockets) s.destroy();
    },
    close: async () => {},
  };
  const server = net.createServer((client) => {
    const upstream = net.connect(proxy.target, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
      s.on('error', () => {});
    }
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.pipe(client);
    client.on('data', (chunk: Buffer) => {
      upstream.write(chunk);
      if (!Number.isFinite(proxy.bytesPerSecond)) return;
      client.pause();
      setTimeout(() => client.resume(), (chunk.length / proxy.bytesPerSecond) * 1000);
    });
    client.on('end', () => upstream.end());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  proxy.url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`;
  proxy.close = () =>
    new Promise((resolve) => {
      proxy.dropConnections();
      server.close(() => resolve());
    });
  return proxy;
}
