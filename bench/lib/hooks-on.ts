// The real server with every optional hook switched on, as a production deployment runs it:
// a type policy (DENIED_TYPES), webhooks to a receiver in this process that counts the events
// and answers 204, and virus scanning by a real clamd (test/support/clamd.ts: Debian's clamd with
// a one-signature database, so clamd's own work is small; the server's — reading the file,
// streaming it to clamd, recording the verdict, its event — is all there).
// `settled()` waits until every event of the uploads so far has arrived: the work a hook does
// after the response is then inside the CPU figure of the uploads that caused it. Without the
// webhooks hook there is nothing to wait for, and a scan still running is left out of the figure.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync } from 'node:fs';
import { startClamd, type ClamdProcess } from '../../test/support/clamd.ts';

export const HOOKS = ['types', 'webhooks', 'scan'] as const;
export type Hook = (typeof HOOKS)[number];

const CLAMD = '/usr/sbin/clamd';
const SETTLE_TIMEOUT_MS = 120_000;

export type Hooks = {
  /** environment for the real server */
  env: Record<string, string>;
  /** which hooks are on (scan is dropped with a note when clamd is missing) */
  on: Hook[];
  notes: string[];
  /** resolves once the events of `uploads` finished uploads (since `mark()`) have been delivered */
  settled(uploads: number): Promise<void>;
  /** starts counting from now (a new server process) */
  mark(): void;
  stop(): Promise<void>;
};

export async function startHooks(wanted: readonly Hook[]): Promise<Hooks> {
  const notes: string[] = [];
  const on = wanted.filter((h) => {
    if (h === 'scan' && !existsSync(CLAMD)) return void notes.push(`scan hook off: ${CLAMD} is missing`), false;
    return true;
  });
  const env: Record<string, string> = {};
  if (on.includes('types')) env.DENIED_TYPES = '.exe,application/x-msdownload,application/x-sh';

  let received = 0;
  let markAt = 0;
  const sink = http.createServer((req, res) => {
    req.resume();
    req.once('end', () => {
      received++;
      res.writeHead(204).end();
    });
  });
  if (on.includes('webhooks')) {
    await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
    env.WEBHOOK_URLS = `http://127.0.0.1:${(sink.address() as AddressInfo).port}/events`;
    env.WEBHOOK_SECRET = 'bench-webhook-secret-0123456789abcdef';
  }
  let clamd: ClamdProcess | undefined;
  if (on.includes('scan')) {
    clamd = await startClamd();
    Object.assign(env, clamd.env);
  }
  // upload.created and upload.finished per upload, and file.scanned when scanning is on.
  const perUpload = on.includes('webhooks') ? 2 + (on.includes('scan') ? 1 : 0) : 0;

  return {
    env,
    on,
    notes,
    mark: () => void (markAt = received),
    async settled(uploads) {
      const deadline = performance.now() + SETTLE_TIMEOUT_MS;
      while (received - markAt < uploads * perUpload) {
        if (performance.now() > deadline) throw new Error(`webhook events: ${received - markAt} of ${uploads * perUpload} after ${SETTLE_TIMEOUT_MS} ms`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    async stop() {
      await clamd?.dispose();
      if (sink.listening) await new Promise<void>((resolve) => sink.close(() => resolve()));
    },
  };
}
