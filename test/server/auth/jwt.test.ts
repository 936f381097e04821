// User tokens the server must not trust, sent as Bearer and as the cookie to every route: alg none,
// unknown keys, algorithm confusion, malformed tokens, missing claims, bad subjects, expiry.
import assert from 'node:assert/strict';
import { createPublicKey } from 'node:crypto';
import { describe, test } from 'node:test';
import { generateKeyPair, importJWK, type JWTPayload } from 'jose';
import { aliceAndBob } from './alice-and-bob.ts';
import { b64url, inAnHour, OWN_ISSUER, publicHalf, signed, unsignedToken } from './forge.ts';

describe('auth: tokens the server cannot trust', () => {
  const fixture = aliceAndBob();

  test('bad tokens: alg none, unknown key, algorithm confusion, malformed, missing claims, bad subjects', async () => {
    const { server, aliceUntouched, refuseEverywhere } = fixture;
    const ownKey = server.services.ownKey;
    const kid = ownKey.kid!;
    assert.equal(ownKey.alg, 'RS256', 'the default algorithm of the own key');
    const ownPrivate = await importJWK(ownKey, 'RS256');
    const publicOnly = publicHalf(ownKey);
    const publicPem = createPublicKey({ key: publicOnly as import('node:crypto').JsonWebKey, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const stranger = (await generateKeyPair('RS256')).privateKey;
    const otherType = (await generateKeyPair('ES256')).privateKey;
    const claims = (extra: JWTPayload = {}): JWTPayload => ({ sub: 'alice', iss: OWN_ISSUER, exp: inAnHour(), ...extra });
    const own = (payload: JWTPayload) => signed(ownPrivate, { alg: 'RS256', kid }, payload);
    const enc = new TextEncoder();

    const bad: Array<[string, string]> = [
      ['alg none with the server kid', unsignedToken({ alg: 'none', kid, typ: 'JWT' }, claims())],
      ['alg none without kid', unsignedToken({ alg: 'none', typ: 'JWT' }, claims())],
      ['alg NONE with a signature', unsignedToken({ alg: 'NONE', kid }, claims()) + 'c2ln'],
      ['unknown RS256 key with the server kid', await signed(stranger, { alg: 'RS256', kid }, claims())],
      ['unknown RS256 key without kid', await signed(stranger, { alg: 'RS256' }, claims())],
      ['ES256 with the server kid (an RSA key)', await signed(otherType, { alg: 'ES256', kid }, claims())],
      ['PS256 by the server key', await signed(await importJWK(ownKey, 'PS256'), { alg: 'PS256', kid }, claims())],
      ['HS256 keyed with the public PEM', await signed(enc.encode(publicPem), { alg: 'HS256', kid }, claims())],
      ['HS256 keyed with the public JWK', await signed(enc.encode(JSON.stringify(publicOnly)), { alg: 'HS256', kid }, claims())],
      ['HS256 keyed with the public PEM, no kid', await signed(enc.encode(publicPem), { alg: 'HS256' }, claims())],
      ['missing exp', await own({ sub: 'alice', iss: OWN_ISSUER })],
      ['wrong issuer', await own(claims({ iss: 'https://evil.example' }))],
      ['missing issuer', await own({ sub: 'alice', exp: inAnHour() })],
      ['not yet valid', await own(claims({ nbf: inAnHour() }))],
      ['sub ..', await own(claims({ sub: '..' }))],
      ['sub .', await own(claims({ sub: '.' }))],
      ['sub a/b', await own(claims({ sub: 'a/b' }))],
      ['sub of 129 chars', await own(claims({ sub: 'a'.repeat(129) }))],
      ['sub empty', await own(claims({ sub: '' }))],
      ['sub missing', await own({ iss: OWN_ISSUER, exp: inAnHour() })],
      ['malformed: one word', 'not-a-jwt'],
      ['malformed: three dots of nothing', 'a.b.c'],
      ['malformed: header not JSON', `${Buffer.from('{"alg":').toString('base64url')}.${b64url(claims())}.sig`],
      ['malformed: signature altered', (await own(claims())).slice(0, -4) + 'AAAA'],
      ['malformed: payload swapped', (await own(claims())).replace(/\.[^.]+\./, `.${b64url(claims({ sub: 'bob' }))}.`)],
    ];
    for (const [what, token] of bad) {
      await refuseEverywhere({ Authorization: `Bearer ${token}` }, 'invalid_token', what);
      await refuseEverywhere({ Cookie: `sl_token=${token}` }, 'invalid_token', `${what} (cookie)`);
    }
    for (const header of ['Basic YWxpY2U6cGFzcw==', 'Bearer', `Bearer ${await own(claims())} extra`]) {
      await refuseEverywhere({ Authorization: header }, 'invalid_token', `Authorization: ${header.slice(0, 20)}`);
    }
    await aliceUntouched();
  });

  test('an expired token: 401 token_expired', async () => {
    const { server, aliceUntouched, refuseEverywhere } = fixture;
    const expired = await server.token('alice', -60);
    await refuseEverywhere({ Authorization: `Bearer ${expired}` }, 'token_expired', 'expired');
    await aliceUntouched();
  });
});
