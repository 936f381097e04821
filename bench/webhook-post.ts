// CPU of one webhook delivery in the sending process: fetch against server/webhooks/post.ts
// (node:http with kept-alive connections), both POSTing an event-sized JSON body to a node:http
// receiver that answers 204, in a child process so that its CPU is not counted. Rounds alternate
// between the two ways; each prints µs of this process's CPU (user + system) per delivery.
//
//   node --import tsx bench/webhook-post.ts [--rounds 5] [--count 3000]
import { fork } from 'node:child_process';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { createPoster } from '../server/webhooks/post.ts';

const CONCURRENCY = 8;

if (process.argv[2] === 'receiver') {
  const receiver = http.createServer((req, res) => {
    req.resume();
    req.once('end', () => res.writeHead(204).end());
  });
  receiver.listen(0, '127.0.0.1', () => process.send!((receiver.address() as AddressInfo).port));
} else {
  const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, count: { type: 'string', default: '3000' } } });
  const rounds = Number(values.rounds);
  const count = Number(values.count);
  const child = fork(new URL(import.meta.url).pathname, ['receiver'], { execArgv: ['--import', 'tsx'] });
  const port = await new Promise<number>((resolve) => child.once('message', (p) => resolve(p as number)));
  const target = `http://127.0.0.1:${port}/events`;
  const body = JSON.stringify({ type: 'upload.finished', timestamp: new Date().toISOString(), data: { upload_id: 'u'.repeat(32), key: 'k'.repeat(60), size: 10240, sha256: 'a'.repeat(64) } });
  const headers = { 'Content-Type': 'application/json', 'User-Agent': 'bench', 'Webhook-Id': `evt_${'e'.repeat(32)}`, 'Webhook-Timestamp': '1700000000', 'Webhook-Signature': `v1,${'s'.repeat(44)}` };
  const poster = createPoster({ timeoutMs: 10_000 });
  const ways: Record<string, () => Promise<number>> = {
    fetch: async () => {
      const res = await fetch(target, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(10_000) });
      await res.body?.cancel().catch(() => {});
      return res.status;
    },
    'node:http keep-alive (post.ts)': () => poster.post(target, headers, body, AbortSignal.timeout(10_000)),
  };
  const cpuPerDelivery = async (send: () => Promise<number>, n: number): Promise<number> => {
    let next = 0;
    const before = process.cpuUsage();
    await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
      while (next++ < n) if ((await send()) !== 204) throw new Error('the receiver did not answer 204');
    }));
    const used = process.cpuUsage(before);
    return (used.user + used.system) / n;
  };
  for (const send of Object.values(ways)) await cpuPerDelivery(send, 500); // warm-up
  const figures = new Map<string, number[]>(Object.keys(ways).map((k) => [k, []]));
  for (let r = 0; r < rounds; r++) for (const [name, send] of Object.entries(ways)) figures.get(name)!.push(Math.round(await cpuPerDelivery(send, count)));
  console.log(`load average (1 min) ${loadavg()[0]!.toFixed(2)}; µs of CPU per delivery, ${rounds} rounds of ${count}, ${CONCURRENCY} at once:`);
  for (const [name, list] of figures) console.log(`  ${name}: ${list.join(' / ')} (median ${[...list].sort((a, b) => a - b)[Math.floor(list.length / 2)]})`);
  poster.close();
  child.kill();
}
