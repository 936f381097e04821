// Configuration: the variables of docs/configuration.md, their defaults, and one clear line per bad variable.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import path from 'node:path';
import { describe, test } from 'node:test';
import { ConfigError, GiB, loadConfig, MAX_LINK_TTL_SECONDS } from '../../server/config.ts';
import { ROOT } from '../helpers/server.ts';

describe('loadConfig', () => {
  test('defaults need no configuration at all', () => {
    const config = loadConfig({}, '/srv/app');
    assert.equal(config.port, 8080);
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.dataDir, '/srv/app/data');
    assert.equal(config.quotaBytes, 10 * GiB);
    assert.equal(config.maxUploadBytes, 10 * GiB);
    assert.equal(config.signedUrlTtlSeconds, 3600);
    assert.equal(config.uploadExpirySeconds, 86400);
    assert.equal(config.cookieName, 'sl_token');
    assert.equal(config.storage, 'file');
    assert.deepEqual(config.corsOrigins, []);
    assert.equal(config.serviceTokens, undefined);
    assert.equal(config.devChecks, false, 'production runs without the development checks');
    assert.equal(loadConfig({ STREAMLINE_DEV_CHECKS: 'true' }).devChecks, true);
  });

  test('AUTH_JWT_PUBLIC_KEY_BASE64 is decoded once, here: the config holds the PEM the verifier reads', () => {
    const pem = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
    assert.equal(loadConfig({ AUTH_JWT_PUBLIC_KEY_BASE64: Buffer.from(pem).toString('base64') }).jwtPublicKeyPem, pem);
    assert.equal(loadConfig({}).jwtPublicKeyPem, undefined);
  });

  test('SIGNED_URL_TTL_SECONDS goes up to the longest lifetime a link may have, and no further', () => {
    assert.equal(loadConfig({ SIGNED_URL_TTL_SECONDS: String(MAX_LINK_TTL_SECONDS) }).signedUrlTtlSeconds, MAX_LINK_TTL_SECONDS);
    assert.throws(() => loadConfig({ SIGNED_URL_TTL_SECONDS: String(MAX_LINK_TTL_SECONDS + 1) }), ConfigError);
  });

  test('lists are comma-separated; MAX_UPLOAD_BYTES defaults to the quota', () => {
    const config = loadConfig({
      AUTH_SERVICE_TOKEN: 'aaaaaaaaaaaaaaaa1, bbbbbbbbbbbbbbbb2',
      CORS_ORIGINS: 'https://a.example, http://localhost:5173',
      QUOTA_DEFAULT_BYTES: '1000',
      PUBLIC_URL: 'https://files.example.com/',
    });
    assert.deepEqual(config.serviceTokens, ['aaaaaaaaaaaaaaaa1', 'bbbbbbbbbbbbbbbb2']);
    assert.deepEqual(config.corsOrigins, ['https://a.example', 'http://localhost:5173']);
    assert.equal(config.maxUploadBytes, 1000);
    assert.equal(config.publicUrl, 'https://files.example.com');
  });

  const bad: Array<[Record<string, string>, string]> = [
    [{ PORT: 'eighty' }, 'PORT'],
    [{ PORT: '70000' }, 'PORT'],
    [{ QUOTA_DEFAULT_BYTES: '-1' }, 'QUOTA_DEFAULT_BYTES'],
    [{ QUOTA_DEFAULT_BYTES: '10GB' }, 'QUOTA_DEFAULT_BYTES'],
    [{ MAX_UPLOAD_BYTES: '0' }, 'MAX_UPLOAD_BYTES'],
    [{ SIGNED_URL_TTL_SECONDS: '1.5' }, 'SIGNED_URL_TTL_SECONDS'],
    [{ UPLOAD_EXPIRY_SECONDS: '0' }, 'UPLOAD_EXPIRY_SECONDS'],
    [{ PUBLIC_URL: 'files.example.com' }, 'PUBLIC_URL'],
    [{ PUBLIC_URL: 'https://x.example/base' }, 'PUBLIC_URL'],
    [{ AUTH_SERVICE_TOKEN: 'short' }, 'AUTH_SERVICE_TOKEN'],
    [{ UPLOAD_SIGNING_KEY: 'too-short-for-hmac' }, 'UPLOAD_SIGNING_KEY'],
    [{ AUTH_JWT_PUBLIC_KEY_BASE64: Buffer.from('not a key').toString('base64') }, 'AUTH_JWT_PUBLIC_KEY_BASE64'],
    [{ AUTH_JWKS_URL: 'ftp://idp.example/jwks' }, 'AUTH_JWKS_URL'],
    [{ AUTH_COOKIE_NAME: 'has space' }, 'AUTH_COOKIE_NAME'],
    [{ CORS_ORIGINS: 'https://a.example/path' }, 'CORS_ORIGINS'],
    [{ STORAGE: 'ftp' }, 'STORAGE'],
    [{ STORAGE: 's3' }, 'S3_BUCKET'],
    [{ STORAGE: 's3', S3_BUCKET: 'b', S3_FORCE_PATH_STYLE: 'maybe' }, 'S3_FORCE_PATH_STYLE'],
    [{ STREAMLINE_DEV_CHECKS: 'on' }, 'STREAMLINE_DEV_CHECKS'],
    [{ ALLOWED_TYPES: 'image/png, pictures' }, 'ALLOWED_TYPES'],
    [{ DENIED_TYPES: '*/html' }, 'DENIED_TYPES'],
    [{ CLAMD_SOCKET: '/run/clamd.ctl', CLAMD_HOST: '127.0.0.1' }, 'CLAMD_SOCKET'],
    [{ CLAMD_HOST: '127.0.0.1', CLAMD_PORT: '0' }, 'CLAMD_PORT'],
    [{ CLAMD_HOST: '127.0.0.1', CLAMD_TIMEOUT_SECONDS: 'soon' }, 'CLAMD_TIMEOUT_SECONDS'],
    [{ WEBHOOK_URLS: 'https://hooks.example/in' }, 'WEBHOOK_SECRET'],
    [{ WEBHOOK_URLS: 'ftp://hooks.example/in', WEBHOOK_SECRET: 'w'.repeat(32) }, 'WEBHOOK_URLS'],
    [{ WEBHOOK_URLS: 'https://hooks.example/in', WEBHOOK_SECRET: 'short' }, 'WEBHOOK_SECRET'],
    [{ WEBHOOK_URLS: 'https://hooks.example/in', WEBHOOK_SECRET: 'w'.repeat(32), WEBHOOK_GIVE_UP_HOURS: '0' }, 'WEBHOOK_GIVE_UP_HOURS'],
  ];
  for (const [env, variable] of bad) {
    test(`refuses ${JSON.stringify(env)} naming ${variable}`, () => {
      assert.throws(() => loadConfig(env), (error: unknown) => {
        assert.ok(error instanceof ConfigError);
        assert.equal(error.problems.length, 1, error.message);
        assert.ok(error.problems[0]!.startsWith(`${variable}: `), error.problems[0]);
        return true;
      });
    });
  }

  test('content checks, clamd and webhooks are parsed into typed settings', () => {
    const config = loadConfig({
      ALLOWED_TYPES: 'image/*, application/PDF, .txt',
      DENIED_TYPES: 'image/svg+xml',
      CLAMD_HOST: '127.0.0.1',
      WEBHOOK_URLS: 'https://a.example/hook, http://127.0.0.1:9/in, https://a.example/hook',
      WEBHOOK_SECRET: 'w'.repeat(32),
    });
    assert.deepEqual(config.typePolicy, { allowed: ['image/*', 'application/pdf', '.txt'], denied: ['image/svg+xml'] });
    assert.deepEqual(config.clamd, { address: { host: '127.0.0.1', port: 3310 }, timeoutMs: 60_000, maxBackoffMs: 300_000 });
    assert.deepEqual(config.webhooks?.urls, ['https://a.example/hook', 'http://127.0.0.1:9/in']);
    assert.equal(config.webhooks?.giveUpMs, 72 * 3600_000);
    const off = loadConfig({});
    assert.equal(off.clamd, undefined);
    assert.equal(off.webhooks, undefined);
    assert.deepEqual(off.typePolicy, { allowed: [], denied: [] });
  });

  test('every bad variable is reported at once', () => {
    assert.throws(() => loadConfig({ PORT: 'x', QUOTA_DEFAULT_BYTES: 'y' }), (error: ConfigError) => error.problems.length === 2);
  });

  test('the server refuses to start on bad configuration with one line naming the variable', () => {
    const result = spawnSync(process.execPath, ['--import', 'tsx', path.join(ROOT, 'server/main.ts')], {
      cwd: ROOT,
      env: { ...process.env, PORT: 'eighty', DATA_DIR: '/nonexistent/never-created' },
      encoding: 'utf8',
      timeout: 30_000,
    });
    assert.equal(result.status, 2);
    assert.equal(result.stdout, '');
    assert.equal(result.stderr.trim(), 'configuration error: PORT: expected a whole number from 0 to 65535, got "eighty"');
  });
});
