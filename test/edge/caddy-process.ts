// Runs Debian's Caddy from the repository's Caddyfile, as an operator would, with every port and
// path from the environment: HTTPS with `tls internal` (its root CA handed back for clients), its
// data and config in a temp folder (XDG_*), no admin endpoint, no systemd.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/free-port.ts';

export { freePort };

// No test-helper imports: bench/caddy-offload.ts uses this module outside the test runner.
const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export interface CaddyProcess {
  /** https://localhost:<port> */
  origin: string;
  port: number;
  /** The root certificate of Caddy's internal CA, for clients that must trust it. */
  ca: string;
  output(): string;
  stop(): Promise<void>;
}

export interface CaddyOptions {
  httpsPort: number;
  /** host:port of the server */
  upstream: string;
  dataDir: string;
  edgeSecret: string;
}

export async function startCaddy(options: CaddyOptions): Promise<CaddyProcess> {
  const home = mkdtempSync(path.join(os.tmpdir(), 'sl-caddy-'));
  const httpPort = await freePort();
  const child: ChildProcess = spawn('caddy', ['run', '--config', path.join(ROOT, 'Caddyfile'), '--adapter', 'caddyfile'], {
    cwd: home,
    env: {
      PATH: process.env.PATH,
      HOME: home,
      XDG_DATA_HOME: path.join(home, 'data'),
      XDG_CONFIG_HOME: path.join(home, 'config'),
      SL_SITE_ADDRESS: 'localhost',
      SL_TLS: 'internal',
      SL_HTTP_PORT: String(httpPort),
      SL_HTTPS_PORT: String(options.httpsPort),
      SL_UPSTREAM: options.upstream,
      SL_CADDY_ADMIN: 'off',
      EDGE_SECRET: options.edgeSecret,
      DATA_DIR: options.dataDir,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const caFile = path.join(home, 'data', 'caddy', 'pki', 'authorities', 'local', 'root.crt');

  const deadline = Date.now() + 20_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`caddy exited with ${child.exitCode}:\n${out}`);
    if (existsSync(caFile) && (await handshakes(options.httpsPort, readFileSync(caFile, 'utf8')))) break;
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`caddy did not serve HTTPS within 20 s:\n${out}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    origin: `https://localhost:${options.httpsPort}`,
    port: options.httpsPort,
    ca: readFileSync(caFile, 'utf8'),
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

function handshakes(port: number, ca: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca }, () => {
      socket.end();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export interface HttpsResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** One HTTPS request trusting `ca` (fetch cannot be given a CA without undici's Agent). */
export function httpsRequest(url: string, ca: string, init: { method?: string; headers?: Record<string, string>; body?: string } = {}): Promise<HttpsResponse> {
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}
