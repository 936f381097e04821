// Two middlewares registered as one (server/http/in-sequence.ts) behave as the two registered
// one after the other: same order, a refusal from either is answered by the app's error handler,
// and the second still sees the status of an answer the error handler made for the route.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Hono, type MiddlewareHandler } from 'hono';
import { inSequence } from '../../../server/http/in-sequence.ts';

function appWith(first: MiddlewareHandler, second: MiddlewareHandler, route: () => Response): Hono {
  const app = new Hono();
  app.use('/v1/*', inSequence(first, second));
  app.get('/v1/thing', route);
  app.onError((error) => new Response(error.message, { status: 418 }));
  return app;
}

describe('inSequence', () => {
  test('runs the first, the second, then the route; the second sees the answer', async () => {
    const seen: string[] = [];
    const app = appWith(
      (_c, next) => (seen.push('first'), next()),
      async (c, next) => {
        seen.push('second');
        await next();
        seen.push(`second saw ${c.res.status}`);
      },
      () => (seen.push('route'), new Response('ok', { status: 201 })),
    );
    const response = await app.request('/v1/thing');
    assert.equal(response.status, 201);
    assert.deepEqual(seen, ['first', 'second', 'route', 'second saw 201']);
  });

  test('a refusal from either middleware, sync or async, is answered by the error handler', async () => {
    const refuse = () => {
      throw new Error('refused');
    };
    const pass: MiddlewareHandler = (_c, next) => next();
    const route = () => new Response('ok');
    for (const [name, app] of [
      ['first, thrown', appWith(refuse, pass, route)],
      ['second, thrown', appWith(pass, refuse, route)],
      ['second, rejected', appWith(pass, async () => refuse(), route)],
    ] as const) {
      const response = await app.request('/v1/thing');
      assert.equal(response.status, 418, name);
      assert.equal(await response.text(), 'refused', name);
    }
  });

  test("the route's refusal reaches the second as the error handler's answer", async () => {
    let status = 0;
    const app = appWith(
      (_c, next) => next(),
      async (c, next) => {
        await next();
        status = c.res.status;
      },
      () => {
        throw new Error('no');
      },
    );
    assert.equal((await app.request('/v1/thing')).status, 418);
    assert.equal(status, 418);
  });
});
