import { test } from 'node:test';
import assert from 'node:assert/strict';
import { contentDisposition } from '../../../server/http/content-disposition.ts';

const cases: Array<[string, string, 'inline' | 'attachment', string]> = [
  ['plain ASCII', 'report.pdf', 'attachment', `attachment; filename="report.pdf"; filename*=UTF-8''report.pdf`],
  ['inline', 'a.png', 'inline', `inline; filename="a.png"; filename*=UTF-8''a.png`],
  ['spaces and RFC 8187 specials', 'my file (1)+x.txt', 'attachment',
    `attachment; filename="my file (1)+x.txt"; filename*=UTF-8''my%20file%20%281%29+x.txt`],
  ['accents fall back to the base letter', 'café.txt', 'attachment',
    `attachment; filename="cafe.txt"; filename*=UTF-8''caf%C3%A9.txt`],
  ['decomposed accents are composed first', 'cafe\u0301.txt', 'attachment',
    `attachment; filename="cafe.txt"; filename*=UTF-8''caf%C3%A9.txt`],
  ['CJK', '報告.pdf', 'attachment', `attachment; filename="_.pdf"; filename*=UTF-8''%E5%A0%B1%E5%91%8A.pdf`],
  ['emoji', '🎉 party.jpg', 'attachment',
    `attachment; filename="_ party.jpg"; filename*=UTF-8''%F0%9F%8E%89%20party.jpg`],
  ['a backslash is a path separator too', 'say "hi"\\there.txt', 'attachment',
    `attachment; filename="there.txt"; filename*=UTF-8''there.txt`],
  ['quotes only', 'say "hi".txt', 'attachment', `attachment; filename="say hi.txt"; filename*=UTF-8''say%20%22hi%22.txt`],
  ['path traversal keeps the last segment', '../../etc/passwd', 'attachment',
    `attachment; filename="passwd"; filename*=UTF-8''passwd`],
  ['Windows path', 'C:\\Users\\me\\a.txt', 'attachment', `attachment; filename="a.txt"; filename*=UTF-8''a.txt`],
  ['only dots', '..', 'attachment', `attachment; filename="download"; filename*=UTF-8''download`],
  ['trailing slash', 'dir/', 'attachment', `attachment; filename="download"; filename*=UTF-8''download`],
  ['empty', '', 'attachment', `attachment; filename="download"; filename*=UTF-8''download`],
  ['CR/LF header injection', 'a.txt\r\nSet-Cookie: x=1', 'attachment',
    `attachment; filename="a.txtSet-Cookie: x=1"; filename*=UTF-8''a.txtSet-Cookie%3A%20x%3D1`],
  ['NUL and tab', 'a\u0000b\tc.txt', 'attachment', `attachment; filename="abc.txt"; filename*=UTF-8''abc.txt`],
  ['bidi override cannot disguise the extension', 'photo\u202Egpj.exe', 'attachment',
    `attachment; filename="photogpj.exe"; filename*=UTF-8''photogpj.exe`],
  ['percent in the fallback', '100%25 done.txt', 'attachment',
    `attachment; filename="100_25 done.txt"; filename*=UTF-8''100%2525%20done.txt`],
  ['semicolon and comma stay quoted', 'a;b,c.txt', 'attachment',
    `attachment; filename="a;b,c.txt"; filename*=UTF-8''a%3Bb%2Cc.txt`],
  ['lone surrogate becomes U+FFFD', 'a\uD800.txt', 'attachment',
    `attachment; filename="a_.txt"; filename*=UTF-8''a%EF%BF%BD.txt`],
];

for (const [name, filename, type, expected] of cases) {
  test(`contentDisposition: ${name}`, () => {
    assert.equal(contentDisposition(filename, type), expected);
  });
}

function decodedFilenameStar(header: string): string {
  const match = /filename\*=UTF-8''([^;]*)$/.exec(header);
  assert.ok(match, header);
  return decodeURIComponent(match[1] as string);
}

const longCases: Array<[string, string]> = [
  ['long ASCII keeps its extension', `${'a'.repeat(400)}.jpeg`],
  ['long multi-byte', `${'é'.repeat(300)}.txt`],
  ['long emoji does not split a code point', `${'😀'.repeat(100)}.png`],
  ['long name without extension', 'x'.repeat(1000)],
];

for (const [name, filename] of longCases) {
  test(`contentDisposition: ${name}`, () => {
    const header = contentDisposition(filename, 'attachment');
    const decoded = decodedFilenameStar(header);
    assert.ok(Buffer.byteLength(decoded) <= 255, `${Buffer.byteLength(decoded)} bytes`);
    assert.ok(Buffer.byteLength(decoded) > 240, 'truncated no more than needed');
    assert.ok(!decoded.includes('\uFFFD'), 'no code point was cut in half');
    const ext = /\.[a-z]+$/.exec(filename)?.[0];
    if (ext) assert.ok(decoded.endsWith(ext), decoded.slice(-10));
  });
}

test('every header is one line of visible ASCII', () => {
  for (const [, filename, type] of cases) {
    assert.match(contentDisposition(filename, type), /^[\x20-\x7e]+$/);
  }
});
