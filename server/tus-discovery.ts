// What OPTIONS advertises on top of what @tus/server knows of its store (tus 1.0 §5.2: "Tus-Extension
// … a comma-separated list of the extensions supported by the Server"). Only what works end to end
// is listed: the extensions below are implemented in this server, outside @tus/server.
import { CHECKSUM_ALGORITHMS } from './tus-checksum.ts';

const OWN_EXTENSIONS = ['checksum', 'concatenation'];

export function advertiseExtensions(response: Response): Response {
  const headers = new Headers(response.headers);
  const listed = (headers.get('tus-extension') ?? '').split(',').map((e) => e.trim()).filter(Boolean);
  headers.set('Tus-Extension', [...new Set([...listed, ...OWN_EXTENSIONS])].join(','));
  // tus 1.0 (checksum): "Tus-Checksum-Algorithm … a comma-separated list of the checksum algorithms
  // supported by the server".
  headers.set('Tus-Checksum-Algorithm', CHECKSUM_ALGORITHMS.join(','));
  return new Response(response.body, { status: response.status, headers });
}
