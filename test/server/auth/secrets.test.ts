// The server's own signing key, kept in DATA_DIR/secrets.json: its algorithm (AUTH_JWT_ALGORITHM),
// an install upgraded from an ES256 key, and `npm run token`, which signs with it and never rotates it.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import type { JWK } from 'jose';
import { expectProblem } from '../../helpers/problem.ts';
import { ROOT, startTestServer, type TestServer } from '../../helpers/server.ts';

describe("auth: the own key's algorithm (AUTH_JWT_ALGORITHM) and an upgrade from ES256", () => {
  const jwks = async (server: TestServer) => ((await (await fetch(`${server.url}/.well-known/jwks.json`)).json()) as { keys: JWK[] }).keys;
  const works = async (server: TestServer, token: string) => (await fetch(`${server.url}/v1/usage`, { headers: { Authorization: `Bearer ${token}` } })).status;
  const stored = (server: TestServer) => JSON.parse(readFileSync(path.join(server.dataDir, 'secrets.json'), 'utf8'));

  test('ES256 stays selectable: the key, the JWKS and the tokens are ES256', async () => {
    const server = await startTestServer({ env: { AUTH_JWT_ALGORITHM: 'ES256' } });
    try {
      const keys = await jwks(server);
      assert.deepEqual(keys.map((k) => [k.kty, k.alg, k.crv]), [['EC', 'ES256', 'P-256']]);
      const token = await server.token('frank');
      assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg, 'ES256');
      assert.equal(await works(server, token), 200);
    } finally {
      await server.stop();
    }
  });

  test('an install whose secrets hold an ES256 key: RS256 signs from then on, its ES256 tokens stay valid until the key ages out', async () => {
    const old = await startTestServer({ env: { AUTH_JWT_ALGORITHM: 'ES256' } });
    const esKid = old.services.ownKey.kid;
    const esToken = await old.token('frank', 400 * 86400);
    await old.stop({ keepData: true });

    const upgraded = await startTestServer({ dataDir: old.dataDir });
    const rsKid = upgraded.services.ownKey.kid;
    try {
      assert.deepEqual((await jwks(upgraded)).map((k) => [k.kid, k.alg]), [[rsKid, 'RS256'], [esKid, 'ES256']]);
      assert.equal(await works(upgraded, esToken), 200, 'a token of the retired ES256 key');
      const rsToken = await upgraded.token('frank');
      assert.equal(JSON.parse(Buffer.from(rsToken.split('.')[0]!, 'base64url').toString()).kid, rsKid);
      assert.equal(await works(upgraded, rsToken), 200);
      assert.equal(stored(upgraded).retired_user_token_keys.length, 1);
    } finally {
      await upgraded.stop({ keepData: true });
    }

    // A restart keeps both keys as they are.
    const again = await startTestServer({ dataDir: old.dataDir });
    try {
      assert.deepEqual((await jwks(again)).map((k) => k.kid), [rsKid, esKid]);
      assert.equal(await works(again, esToken), 200);
    } finally {
      await again.stop({ keepData: true });
    }

    // Past the longest lifetime of a token it can have signed, the retired key is dropped.
    const later = Date.now() + 367 * 86400_000;
    const aged = await startTestServer({ dataDir: old.dataDir, now: () => later });
    try {
      assert.deepEqual((await jwks(aged)).map((k) => k.kid), [rsKid]);
      await expectProblem(await fetch(`${aged.url}/v1/usage`, { headers: { Authorization: `Bearer ${esToken}` } }), 401, 'invalid_token');
      assert.equal(stored(aged).retired_user_token_keys, undefined);
    } finally {
      await aged.stop();
    }
  });

  test('npm run token signs with the stored key and never rotates it, whatever the environment says', async () => {
    const server = await startTestServer({ env: { AUTH_JWT_ALGORITHM: 'ES256' } });
    try {
      const before = stored(server);
      const cli = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/token-cli.ts'), 'frank', '2'], {
        cwd: ROOT,
        env: { PATH: process.env.PATH ?? '', DATA_DIR: server.dataDir },
        encoding: 'utf8',
      });
      assert.equal(cli.status, 0, cli.stderr);
      const token = cli.stdout.trim();
      assert.equal(JSON.parse(Buffer.from(token.split('.')[0]!, 'base64url').toString()).alg, 'ES256');
      assert.equal(await works(server, token), 200);
      assert.deepEqual(stored(server).user_token_key, before.user_token_key);
      assert.equal(stored(server).retired_user_token_keys, undefined);
    } finally {
      await server.stop();
    }
  });

  test('any other AUTH_JWT_ALGORITHM stops start-up naming the variable', async () => {
    const { loadConfig, ConfigError } = await import('../../../server/config.ts');
    for (const bad of ['HS256', 'none', 'RS512']) {
      assert.throws(() => loadConfig({ AUTH_JWT_ALGORITHM: bad }), (error: unknown) => error instanceof ConfigError && /^AUTH_JWT_ALGORITHM: /.test(error.message));
    }
    assert.equal(loadConfig({}).jwtAlgorithm, 'RS256');
    assert.equal(loadConfig({ AUTH_JWT_ALGORITHM: 'es256' }).jwtAlgorithm, 'ES256');
  });
});
