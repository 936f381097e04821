import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseReceivers } from '../../../server/webhooks/receivers.ts';

const basic = (credentials: string) => `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;

test('receivers: credentials leave the URL for an Authorization header; logs see the origin only', () => {
  const cases: [string, string, string | undefined, string][] = [
    ['https://hooks.example.com/in', 'https://hooks.example.com/in', undefined, '#1 https://hooks.example.com'],
    ['https://user:pa%40ss@hooks.example.com/in?token=abc', 'https://hooks.example.com/in?token=abc', basic('user:pa@ss'), '#1 https://hooks.example.com'],
    ['http://only-user@127.0.0.1:8080/x', 'http://127.0.0.1:8080/x', basic('only-user:'), '#1 http://127.0.0.1:8080'],
    ['http://:tok%zz@127.0.0.1/x', 'http://127.0.0.1/x', basic(':tok%zz'), '#1 http://127.0.0.1'],
    ['https://h.example/services/T0/B0/SECRETPATH', 'https://h.example/services/T0/B0/SECRETPATH', undefined, '#1 https://h.example'],
  ];
  for (const [url, target, authorization, label] of cases) {
    const [receiver] = parseReceivers([url]);
    assert.deepEqual(receiver, { url, target, authorization, label }, url);
  }
  assert.deepEqual(parseReceivers(['http://a.example/1', 'http://a.example/2']).map((r) => r.label), ['#1 http://a.example', '#2 http://a.example']);
});
