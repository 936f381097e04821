// Signed GETs through Caddy with the byte-sending offload (Node decides, Caddy's file_server sends)
// against Caddy's file_server serving the same file directly: 1 GiB throughput (curl, median of
// runs) and 10 KiB requests per second (wrk), both over HTTPS on this machine, ratios printed.
// Goals: ≥ 0.8× for 1 GiB, ≥ 0.5× req/s for 10 KiB.
//
//   node --import tsx bench/caddy-offload.ts [--runs 3] [--seconds 5] [--connections 32]
//
// A third figure bounds what any Node-side decision can reach: the same Caddyfile in front of a bare
// node:http server that answers every request with the offload headers at once (no routing, no
// signature, no database, no logs). Our server cannot beat it; the gap between the two is ours.
//
// Needs caddy, curl and wrk (Debian). Rate limits are turned off for the benchmarked server: one
// client hammering one link is exactly what they exist to stop.
import { spawn, spawnSync } from 'node:child_process';
import { createReadStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { freePort, startCaddy } from '../test/edge/caddy-process.ts';
import { builtServer } from './lib/targets.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const SERVICE_TOKEN = 'bench-service-token-0123456789';
const tempDir = (prefix: string) => mkdtempSync(path.join(os.tmpdir(), prefix));

/** The build of server/main.ts (what production runs) as a child process on a free port; resolves once it listens. */
async function spawnServer(dataDir: string, env: Record<string, string>): Promise<{ url: string; kill(): Promise<void> }> {
  const port = await freePort();
  const child = spawn(process.execPath, [builtServer(ROOT)], {
    cwd: ROOT,
    env: { ...process.env, ...env, AUTH_SERVICE_TOKEN: SERVICE_TOKEN, DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`server exited with ${code}: ${err}`)));
    const poll = setInterval(() => {
      if (err.includes('is listening on')) {
        clearInterval(poll);
        resolve();
      }
    }, 50);
  });
  return {
    url: `http://127.0.0.1:${port}`,
    kill: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

const { values: args } = parseArgs({
  options: { runs: { type: 'string', default: '3' }, seconds: { type: 'string', default: '5' }, connections: { type: 'string', default: '32' } },
});
const RUNS = Number(args.runs);
const SECONDS = Number(args.seconds);
const CONNECTIONS = Number(args.connections);
const EDGE_SECRET = 'bench-edge-secret-0123456789abcdef0123';
const GiB = 1024 ** 3;

function run(cmd: string, argv: string[]): string {
  const r = spawnSync(cmd, argv, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(' ')} failed: ${r.stderr}`);
  return r.stdout;
}

/** Uploads `file` straight to the server (tus: create, then one streamed PATCH); returns the key. */
async function upload(base: string, file: string, name: string): Promise<string> {
  const size = statSync(file).size;
  const created = await fetch(`${base}/v1/uploads`, {
    method: 'POST',
    headers: { 'X-Service-Token': SERVICE_TOKEN, 'Tus-Resumable': '1.0.0', 'Upload-Length': String(size), 'Upload-Metadata': `user_id ${Buffer.from('bench').toString('base64')},filename ${Buffer.from(name).toString('base64')}` },
  });
  const location = new URL(created.headers.get('location')!).pathname;
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${location}`, {
      method: 'PATCH',
      headers: { 'X-Service-Token': SERVICE_TOKEN, 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', 'Content-Length': String(size) },
    }, (res) => {
      res.resume();
      res.on('end', () => (res.headers['x-file-key'] ? resolve(String(res.headers['x-file-key'])) : reject(new Error(`upload answered ${res.statusCode}`))));
    });
    req.on('error', reject);
    createReadStream(file, { highWaterMark: 1024 * 1024 }).pipe(req);
  });
}

/** A node:http process answering every request with the offload headers for `offloadPath`. */
async function spawnBareDecider(offloadPath: string): Promise<{ port: number; kill(): Promise<void> }> {
  const port = await freePort();
  const headers = {
    'Content-Type': 'application/octet-stream',
    ETag: '"bench"',
    'Last-Modified': new Date(0).toUTCString(),
    'Content-Disposition': 'attachment; filename="small.bin"',
    'Cache-Control': 'private, no-transform',
    'X-Sl-Offload-Path': offloadPath,
    'X-Sl-Offload-Range': '',
  };
  const code = `require('node:http').createServer((q, s) => { s.writeHead(200, ${JSON.stringify(headers)}); s.end(); })` +
    `.listen(${port}, '127.0.0.1', () => console.log('ready'));`;
  const child = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((resolve, reject) => {
    child.once('exit', (status) => reject(new Error(`bare decider exited with ${status}`)));
    child.stdout!.once('data', () => resolve());
  });
  return {
    port,
    kill: () => new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    }),
  };
}

async function signedLink(base: string, key: string): Promise<string> {
  const res = await fetch(`${base}/v1/files/signed-url?key=${encodeURIComponent(key)}&user_id=bench&ttl=86400`, { headers: { 'X-Service-Token': SERVICE_TOKEN } });
  return ((await res.json()) as { url: string }).url;
}

/** Median bytes/s of `RUNS` whole downloads with curl over HTTP/1.1 (both sides alike). */
function throughput(url: string, caFile: string): number {
  const speeds: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const out = run('curl', ['-sS', '--http1.1', '--cacert', caFile, '-o', '/dev/null', '-w', '%{http_code} %{size_download} %{speed_download}', url]);
    const [status, size, speed] = out.trim().split(' ');
    if (status !== '200' || Number(size) !== GiB) throw new Error(`download of ${url} gave ${out}`);
    speeds.push(Number(speed));
  }
  return speeds.sort((a, b) => a - b)[Math.floor(speeds.length / 2)]!;
}

/** wrk's requests/s for one URL (keep-alive, HTTP/1.1 over TLS). */
function requestsPerSecond(url: string): number {
  const out = run('wrk', [`-t2`, `-c${CONNECTIONS}`, `-d${SECONDS}s`, '--latency', url]);
  if (/Non-2xx or 3xx responses/.test(out)) throw new Error(`wrk saw errors:\n${out}`);
  return Number(/Requests\/sec:\s+([\d.]+)/.exec(out)![1]);
}

async function main(): Promise<void> {
  for (const tool of ['caddy', 'curl', 'wrk']) if (spawnSync('which', [tool]).status !== 0) throw new Error(`needs ${tool} (apt-get install ${tool})`);
  const dataDir = tempDir('sl-bench-offload-');
  const work = tempDir('sl-bench-files-');
  const cleanups: Array<() => Promise<void> | void> = [() => rmSync(dataDir, { recursive: true, force: true }), () => rmSync(work, { recursive: true, force: true })];
  try {
    const offloadPort = await freePort();
    const server = await spawnServer(dataDir, {
      EDGE_SECRET,
      PUBLIC_URL: `https://localhost:${offloadPort}`,
      LOG_LEVEL: 'warn',
      RATE_LIMIT_DOWNLOAD_RPS: '0',
      RATE_LIMIT_LINK_RPS: '0',
    });
    cleanups.unshift(() => server.kill());
    const proxy = await startCaddy({ httpsPort: offloadPort, upstream: new URL(server.url).host, dataDir, edgeSecret: EDGE_SECRET });
    cleanups.unshift(() => proxy.stop());

    const big = path.join(work, 'big.bin');
    run('sh', ['-c', `head -c ${GiB} /dev/urandom > ${big}`]);
    const small = path.join(work, 'small.bin');
    run('sh', ['-c', `head -c 10240 /dev/urandom > ${small}`]);
    const bigKey = await upload(server.url, big, 'big.bin');
    const smallKey = await upload(server.url, small, 'small.bin');
    const bigLink = await signedLink(server.url, bigKey);
    const smallLink = await signedLink(server.url, smallKey);

    // The ceiling of the design: Caddy → a node:http server that decides nothing. In a process of
    // its own, as our server is (wrk runs synchronously from this one).
    const bare = await spawnBareDecider(`/${smallKey.slice('users/'.length)}`);
    cleanups.unshift(() => bare.kill());
    const barePort = await freePort();
    const bareProxy = await startCaddy({ httpsPort: barePort, upstream: `127.0.0.1:${bare.port}`, dataDir, edgeSecret: EDGE_SECRET });
    cleanups.unshift(() => bareProxy.stop());
    const bareSmall = `https://localhost:${barePort}/get/any`;

    // The baseline: Caddy's file_server over the same files, same TLS, same machine.
    const directPort = await freePort();
    const site = path.join(work, 'direct');
    mkdirSync(site);
    const caddyfile = path.join(site, 'Caddyfile');
    writeFileSync(caddyfile, `{\n\tadmin off\n\thttp_port ${await freePort()}\n\tskip_install_trust\n}\nlocalhost:${directPort} {\n\ttls internal\n\troot * ${path.join(dataDir, 'users')}\n\tfile_server\n}\n`);
    const direct = spawn('caddy', ['run', '--config', caddyfile, '--adapter', 'caddyfile'], {
      env: { PATH: process.env.PATH, HOME: site, XDG_DATA_HOME: path.join(site, 'data'), XDG_CONFIG_HOME: path.join(site, 'config') },
      stdio: 'ignore',
    });
    cleanups.unshift(() => new Promise<void>((resolve) => {
      direct.once('exit', () => resolve());
      direct.kill('SIGTERM');
    }));
    const directCa = path.join(site, 'data', 'caddy', 'pki', 'authorities', 'local', 'root.crt');
    for (let i = 0; i < 200; i++) {
      if (spawnSync('curl', ['-s', '--cacert', directCa, '-o', '/dev/null', `https://localhost:${directPort}/`]).status === 0) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const directBig = `https://localhost:${directPort}/${bigKey.slice('users/'.length)}`;
    const directSmall = `https://localhost:${directPort}/${smallKey.slice('users/'.length)}`;
    const proxyCa = path.join(work, 'proxy-ca.crt');
    writeFileSync(proxyCa, proxy.ca);

    // wrk does not verify certificates; curl does (so the baseline is the real file_server).
    const results = {
      offloadBig: throughput(bigLink, proxyCa),
      directBig: throughput(directBig, directCa),
      offloadSmall: requestsPerSecond(smallLink),
      directSmall: requestsPerSecond(directSmall),
      bareSmall: requestsPerSecond(bareSmall),
    };
    const gbps = (b: number) => `${(b / 1e9).toFixed(2)} GB/s`;
    const rps = (r: number) => `${Math.round(r).toLocaleString('en')} req/s`;
    const lines = [
      `| workload | signed GET via Caddy (offload) | Caddy file_server direct | ratio | goal |`,
      `|---|---|---|---|---|`,
      `| 1 GiB, curl, median of ${RUNS} | ${gbps(results.offloadBig)} | ${gbps(results.directBig)} | ${(results.offloadBig / results.directBig).toFixed(2)}× | ≥ 0.8× |`,
      `| 10 KiB, wrk -c${CONNECTIONS} ${SECONDS}s | ${rps(results.offloadSmall)} | ${rps(results.directSmall)} | ${(results.offloadSmall / results.directSmall).toFixed(2)}× | ≥ 0.5× |`,
      '',
      `Design ceiling (10 KiB): Caddy → bare node:http answering the offload headers with no work: ${rps(results.bareSmall)}, ` +
        `${(results.bareSmall / results.directSmall).toFixed(2)}× of file_server direct; our server reaches ${(results.offloadSmall / results.bareSmall).toFixed(2)}× of that ceiling.`,
    ];
    console.log(lines.join('\n'));
  } finally {
    for (const cleanup of cleanups) await cleanup();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
