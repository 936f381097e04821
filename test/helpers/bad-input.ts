// A server to send bad input to, and the check that a refused creation left nothing behind. DATA_DIR
// sits three levels below a root of its own, so anything that escapes it lands in the root where a
// test can find it.
import assert from 'node:assert/strict';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before } from 'node:test';
import { expectProblem } from './problem.ts';
import { startTestServer, tempDir, type TestServer } from './server.ts';
import { createUpload, TUS } from './tus.ts';

export type Headers = Record<string, string>;

/** Every file below `dir`, relative to it. */
export function walk(dir: string, base = dir): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? walk(full, base) : [path.relative(base, full)];
  });
}

export interface BadInputServer {
  root: string;
  dataDir: string;
  server: TestServer;
  /** A user token for `mallory`. */
  mallory: Headers;
  service: Headers;
  /** A tus creation with these headers (Tus-Resumable added) and body. */
  post(headers: Headers, body?: Buffer): Promise<Response>;
  /** A creation refused with `code`, leaving no upload row behind. */
  refusedCreation(res: Response, status: number, code: string, what: string): Promise<void>;
  /** Mallory's new upload of `length` bytes: its URL. */
  newUpload(length: number, meta?: Record<string, string>): Promise<string>;
}

/** Called inside a describe: its `before` starts the server and fills the fields in, its `after` stops it. */
export function badInputServer(): BadInputServer {
  const s = {} as BadInputServer;
  before(async () => {
    const root = tempDir('sl-bad-input-');
    const dataDir = path.join(root, 'a', 'b', 'data');
    mkdirSync(dataDir, { recursive: true });
    const server = await startTestServer({ dataDir });
    Object.assign(s, {
      root,
      dataDir,
      server,
      mallory: { Authorization: `Bearer ${await server.token('mallory')}` },
      service: { 'X-Service-Token': server.serviceToken },
    });
  });
  after(async () => {
    await s.server.stop();
    rmSync(s.root, { recursive: true, force: true });
  });

  s.post = (headers, body) =>
    fetch(`${s.server.url}/v1/uploads`, { method: 'POST', headers: { ...TUS, ...headers }, body: body ? new Uint8Array(body) : null });

  s.refusedCreation = async (res, status, code, what) => {
    const uploadsBefore = (await s.server.services.repo.knownUploadIds()).size;
    await expectProblem(res, status, code, what, 'POST');
    assert.equal(res.headers.get('tus-resumable'), '1.0.0', `${what}: Tus-Resumable on the error`);
    assert.equal(res.headers.get('location'), null, `${what}: no Location`);
    assert.equal((await s.server.services.repo.knownUploadIds()).size, uploadsBefore, `${what}: no upload row`);
  };

  s.newUpload = async (length, meta = {}) => {
    const res = await createUpload(s.server.url, s.mallory, length, meta);
    assert.equal(res.status, 201);
    return res.headers.get('location')!;
  };
  return s;
}
