// The loopback limit: a node:http server that reads every request body, keeps none of it and
// answers 204. Uploading into it measures what the client, the kernel's loopback and Node's HTTP
// parser can move, with no disk and no tus. Prints the same "listening" line as the other targets.
import http from 'node:http';

const server = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    res.writeHead(204);
    res.end();
  });
});

server.listen(0, process.env.HOST ?? '127.0.0.1', () => {
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  const url = `http://${address.address}:${address.port}`;
  console.log(JSON.stringify({ msg: 'listening', port: address.port, url }));
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
