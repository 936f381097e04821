// Assertions on error answers (RFC 9457 problem+json with a stable code), and raw HTTP requests
// for paths that fetch would normalise away (`..` segments, odd percent-encodings).
import assert from 'node:assert/strict';
import http from 'node:http';

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  code: string;
  detail?: string;
}

/**
 * Asserts `res` is the problem `code` with `status`. A HEAD answer has no body: its status and
 * Content-Type are all there is to check.
 */
export async function expectProblem(res: Response, status: number, code: string, what = '', method = 'GET'): Promise<ProblemBody | undefined> {
  const label = `${what} ${method} ${res.url}`.trim();
  const text = await res.text();
  assert.equal(res.status, status, `${label}: status ${res.status}, body ${text.slice(0, 300)}`);
  assert.equal(res.headers.get('content-type')?.split(';')[0], 'application/problem+json', `${label}: content-type`);
  if (method === 'HEAD') {
    assert.equal(text, '', `${label}: a HEAD answer has no body`);
    return undefined;
  }
  const body = JSON.parse(text) as ProblemBody;
  assert.equal(typeof body.type, 'string', `${label}: type`);
  assert.equal(typeof body.title, 'string', `${label}: title`);
  assert.equal(body.status, status, `${label}: body status`);
  assert.equal(body.code, code, `${label}: code (detail: ${body.detail})`);
  return body;
}

export interface RawResponse {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: string;
}

/** One request with the path sent byte for byte as given. */
export function rawRequest(base: string, method: string, rawPath: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: url.hostname, port: url.port, method, path: rawPath, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

export function expectRawProblem(res: RawResponse, status: number, code: string, what = ''): void {
  assert.equal(res.status, status, `${what}: status ${res.status}, body ${res.body.slice(0, 300)}`);
  assert.equal(String(res.headers['content-type']).split(';')[0], 'application/problem+json', `${what}: content-type`);
  if (res.body === '') return;
  const body = JSON.parse(res.body) as ProblemBody;
  assert.equal(body.status, status, `${what}: body status`);
  assert.equal(body.code, code, `${what}: code`);
  assert.equal(typeof body.type, 'string');
  assert.equal(typeof body.title, 'string');
}
