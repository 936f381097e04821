// The loopback limit: a node:http server that reads every request body, keeps none of it and
// answers 204. Uploading into it measures what the client, the kernel's loopback and Node's HTTP
// parser can move, with no disk and no tus. Prints the same "listening" line as the other targets.
import http from 'node:http';
import { listenAndAnnounce } from './lib/listen.ts';

const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(204);
    res.end();
  });
});

listenAndAnnounce(server);
