// deploy/: the example environment file names every variable the server reads, and its values
// load; the systemd unit carries the hardening docs/operations.md promises.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { loadConfig } from '../../server/config.ts';
import { ROOT } from '../helpers/server.ts';

const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

/** Every variable of docs/configuration.md. */
const VARIABLES = [
  'PORT', 'HOST', 'DATA_DIR', 'PUBLIC_URL', 'AUTH_SERVICE_TOKEN', 'AUTH_JWT_PUBLIC_KEY_BASE64', 'AUTH_JWKS_URL',
  'AUTH_JWT_ISSUER', 'AUTH_JWT_AUDIENCE', 'AUTH_COOKIE_NAME', 'UPLOAD_SIGNING_KEY', 'QUOTA_DEFAULT_BYTES',
  'MAX_UPLOAD_BYTES', 'SIGNED_URL_TTL_SECONDS', 'UPLOAD_EXPIRY_SECONDS', 'CORS_ORIGINS', 'STORAGE', 'S3_BUCKET',
  'S3_ENDPOINT', 'S3_REGION', 'S3_ACCESS_KEY_ID', 'S3_SECRET_ACCESS_KEY', 'S3_FORCE_PATH_STYLE',
  'LOG_LEVEL', 'SHUTDOWN_GRACE_SECONDS', 'EDGE_SECRET', 'EDGE_OFFLOAD', 'METRICS_TOKEN',
  'RATE_LIMIT_DOWNLOAD_RPS', 'RATE_LIMIT_DOWNLOAD_BURST', 'RATE_LIMIT_LINK_RPS', 'RATE_LIMIT_LINK_BURST',
  'RATE_LIMIT_AUTH_FAILURES_PER_MINUTE', 'ALLOWED_TYPES', 'DENIED_TYPES', 'CLAMD_SOCKET', 'CLAMD_HOST', 'CLAMD_PORT',
  'CLAMD_TIMEOUT_SECONDS', 'SCAN_RETRY_MAX_SECONDS', 'WEBHOOK_URLS', 'WEBHOOK_SECRET', 'WEBHOOK_TIMEOUT_SECONDS',
  'WEBHOOK_RETRY_MAX_SECONDS', 'WEBHOOK_GIVE_UP_HOURS', 'TRUSTED_PROXIES', 'BODY_LIMIT_BYTES', 'AUTH_JWT_ALGORITHM',
  'LEGACY_API_MAX_BODY_BYTES', 'UPLOAD_IDLE_TIMEOUT_SECONDS', 'UPLOAD_MAX_REQUESTS_PER_USER', 'UPLOAD_MAX_UNFINISHED_PER_USER',
  'DATABASE_URL',
  'STREAMLINE_DEV_CHECKS',
];

describe('deploy/', () => {
  const envFile = read('deploy/stream-line.env');
  const entries = [...envFile.matchAll(/^#?([A-Z][A-Z0-9_]+)=(.*)$/gm)].map((m) => ({ name: m[1]!, value: m[2]!, active: !m[0].startsWith('#') }));

  test('the example environment lists every variable, each with a comment above it', () => {
    const named = new Set(entries.map((e) => e.name));
    for (const name of VARIABLES) assert.ok(named.has(name), `${name} is in deploy/stream-line.env`);
    // And every variable config.ts reads is one of them.
    const readByConfig = [...read('server/config.ts').matchAll(/\b(?:read|integer|list|url|bool|secret)\('([A-Z0-9_]+)'/g)].map((m) => m[1]!);
    for (const name of readByConfig) assert.ok(VARIABLES.includes(name), `${name} (read by config.ts) is documented`);
  });

  test('its values, with the secret filled in, are a valid configuration', () => {
    const env = Object.fromEntries(entries.filter((e) => e.active).map((e) => [e.name, e.value]));
    env.EDGE_SECRET = 'x'.repeat(48);
    const config = loadConfig(env, '/opt/stream-line');
    assert.equal(config.dataDir, '/var/lib/stream-line');
    assert.equal(config.publicUrl, 'https://files.example.com');
    assert.equal(config.host, '127.0.0.1');
  });

  test('the unit runs unprivileged with the hardening options, and outlasts the drain', () => {
    const unit = read('deploy/stream-line.service');
    for (const line of ['User=stream-line', 'NoNewPrivileges=yes', 'ProtectSystem=strict', 'ReadWritePaths=/var/lib/stream-line', 'PrivateTmp=yes', 'ProtectHome=yes', 'CapabilityBoundingSet=', 'UMask=0027', 'KillSignal=SIGTERM']) {
      assert.match(unit, new RegExp(`^${line.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm'), line);
    }
    const stop = Number(/^TimeoutStopSec=(\d+)$/m.exec(unit)![1]);
    assert.ok(stop > 10 + 5, 'TimeoutStopSec covers SHUTDOWN_GRACE_SECONDS (10) and the settle time (5)');
    // systemd's own parser, where it is installed (it is on Debian).
    const verify = spawnSync('systemd-analyze', ['verify', '--man=no', path.join(ROOT, 'deploy/stream-line.service')], { encoding: 'utf8', env: { ...process.env, SYSTEMD_LOG_LEVEL: 'warning' } });
    if (!verify.error) assert.equal(`${verify.stdout}${verify.stderr}`.trim(), '', 'systemd-analyze verify finds nothing to say');
    const caddyEnv = read('deploy/caddy.env');
    for (const name of ['SL_SITE_ADDRESS', 'SL_TLS', 'SL_UPSTREAM', 'EDGE_SECRET', 'DATA_DIR']) assert.match(caddyEnv, new RegExp(`^${name}=`, 'm'));
  });
});
