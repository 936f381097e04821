// The baseline: bare @tus/server + @tus/file-store on node:http, nothing else — no framework,
// no auth, no hashing, no database. Run as its own process (like the real server) so its RSS and
// /proc/<pid>/io are measured the same way. Prints one JSON line with its port when listening,
// in the same shape as the real server's pino "listening" line.
//   DATA_DIR=/tmp/x node --import tsx bench/baseline-bare-tus.ts
import http from 'node:http';
import { listenAndAnnounce } from './lib/listen.ts';
import { Server } from '@tus/server';
import { FileStore } from '@tus/file-store';

const directory = process.env.DATA_DIR;
if (!directory) {
  console.error('DATA_DIR is required');
  process.exit(2);
}

const tus = new Server({ path: '/v1/uploads', datastore: new FileStore({ directory }) });
const server = http.createServer((req, res) => void tus.handle(req, res));

listenAndAnnounce(server);
