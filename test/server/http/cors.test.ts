// CORS (server/http/cors.ts): what browsers rely on. Allowed origins get preflight answers and can
// read every tus header, errors included; without CORS_ORIGINS no origin is allowed.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startTestServer } from '../../helpers/server.ts';
import { createUpload } from '../../helpers/tus.ts';

describe('CORS', () => {
  test('allowed origins get preflight answers and can read every tus header, errors included', async () => {
    const origin = 'https://app.example';
    const server = await startTestServer({ env: { CORS_ORIGINS: `${origin},https://other.example` } });
    try {
      const preflight = await fetch(`${server.url}/v1/uploads`, {
        method: 'OPTIONS',
        headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,tus-resumable,upload-length,upload-metadata' },
      });
      assert.ok(preflight.status === 204 || preflight.status === 200);
      assert.equal(preflight.headers.get('access-control-allow-origin'), origin);
      const allowed = preflight.headers.get('access-control-allow-headers')!.toLowerCase();
      for (const h of ['authorization', 'tus-resumable', 'upload-length', 'upload-metadata', 'upload-offset', 'x-service-token']) assert.ok(allowed.includes(h), h);

      const auth = { Authorization: `Bearer ${await server.token('hana')}`, Origin: origin };
      const created = await createUpload(server.url, auth, 10);
      assert.equal(created.headers.get('access-control-allow-origin'), origin);
      const exposed = created.headers.get('access-control-expose-headers')!.toLowerCase();
      for (const h of ['location', 'upload-offset', 'upload-length', 'tus-resumable', 'upload-expires', 'x-file-key']) assert.ok(exposed.includes(h), h);

      // A refusal is readable by the page too: CORS headers and Tus-Resumable on a 401 and a 404.
      const denied = await fetch(`${server.url}/v1/uploads`, { method: 'POST', headers: { Origin: origin, 'Tus-Resumable': '1.0.0', 'Upload-Length': '1' } });
      assert.equal(denied.status, 401);
      assert.equal(denied.headers.get('access-control-allow-origin'), origin);
      assert.equal(denied.headers.get('tus-resumable'), '1.0.0');
      assert.equal(denied.headers.get('content-type'), 'application/problem+json');
      const missing = await fetch(`${server.url}/v1/uploads/${'a'.repeat(32)}`, { method: 'HEAD', headers: { ...auth, 'Tus-Resumable': '1.0.0' } });
      assert.equal(missing.status, 404);
      assert.equal(missing.headers.get('access-control-allow-origin'), origin);

      const foreign = await fetch(`${server.url}/healthz`, { headers: { Origin: 'https://evil.example' } });
      assert.equal(foreign.headers.get('access-control-allow-origin'), null);
    } finally {
      await server.stop();
    }
  });

  test('without CORS_ORIGINS no origin is allowed (tus would otherwise answer *)', async () => {
    const server = await startTestServer();
    try {
      const auth = { Authorization: `Bearer ${await server.token('ivan')}`, Origin: 'https://app.example' };
      const created = await createUpload(server.url, auth, 10);
      assert.equal(created.status, 201);
      assert.equal(created.headers.get('access-control-allow-origin'), null);
    } finally {
      await server.stop();
    }
  });
});
