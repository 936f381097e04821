// A port the kernel just handed out on 127.0.0.1 (port 0), released again for a server the test
// starts in another process (Caddy, clamd over TCP): never a fixed port.
import net from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}
