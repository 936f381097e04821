// A draft creation request describes its file with ordinary HTTP headers instead of tus's
// Upload-Metadata: Content-Type is the file's type and Content-Disposition's filename its name
// (as tusd reads them). They become the Upload-Metadata value hooks/metadata.ts validates.

/** Upload-Metadata for the file the request describes, or null when it describes nothing. */
export function b64Metadata(headers: Headers): string | null {
  const pairs: string[] = [];
  const type = headers.get('content-type')?.trim();
  if (type && !/^application\/(partial-upload|offset\+octet-stream)\b/i.test(type)) pairs.push(`filetype ${b64(type)}`);
  const filename = dispositionFilename(headers.get('content-disposition'));
  if (filename) pairs.push(`filename ${b64(filename)}`);
  return pairs.length > 0 ? pairs.join(',') : null;
}

/** RFC 6266: filename* (RFC 8187, UTF-8) wins over filename. */
function dispositionFilename(value: string | null): string | null {
  if (!value) return null;
  const extended = /filename\*\s*=\s*UTF-8''([^;]+)/i.exec(value);
  if (extended) {
    try {
      return decodeURIComponent(extended[1]!.trim());
    } catch {
      return null;
    }
  }
  const plain = /filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))/i.exec(value);
  if (!plain) return null;
  return plain[1] !== undefined ? plain[1].replace(/\\(.)/g, '$1') : plain[2]!;
}

function b64(value: string): string {
  return Buffer.from(value, 'utf8').toString('base64');
}
