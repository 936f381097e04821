// A benchmark's helper server: listen on a free port, announce it on stdout as one JSON line
// (the same "listening" line server/main.ts logs), and close on SIGTERM.
import type http from 'node:http';

export function listenAndAnnounce(server: http.Server): void {
  server.listen(0, process.env.HOST ?? '127.0.0.1', () => {
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('no TCP address');
    const url = `http://${address.address}:${address.port}`;
    console.log(JSON.stringify({ msg: 'listening', port: address.port, url }));
  });
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
}
