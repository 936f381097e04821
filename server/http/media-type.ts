// Media types (RFC 9110 §8.3.1) and filename extensions, read one way by the upload checks
// (hooks/content-type.ts) and by the links that serve files (server/routes/signed-links.ts).

/** The type/subtype without parameters, lower-cased (`Text/HTML; charset=utf-8` → `text/html`). */
export function essence(mime: string): string {
  return mime.split(';')[0]!.trim().toLowerCase();
}

const ACTIVE_TYPES = new Set([
  'text/html', 'application/xhtml+xml', 'image/svg+xml', 'text/xml', 'application/xml',
  'text/javascript', 'application/javascript', 'application/ecmascript', 'text/ecmascript',
  'application/x-shockwave-flash', 'text/xsl', 'application/xslt+xml', 'multipart/x-mixed-replace',
]);
const ACTIVE_EXTENSIONS = new Set(['.html', '.htm', '.xhtml', '.shtml', '.svg', '.svgz', '.xml', '.xsl', '.xslt', '.js', '.mjs', '.swf']);

/**
 * Content a browser would run in the link's origin (HTML, SVG, XML that may carry XHTML, script).
 * Served inline it would be stored XSS, so it always goes out as an attachment.
 */
export function executesInBrowser(mime: string | null, filename?: string): boolean {
  if (mime !== null) {
    const type = essence(mime);
    if (ACTIVE_TYPES.has(type) || type.endsWith('+xml')) return true;
  }
  return filename !== undefined && ACTIVE_EXTENSIONS.has(extensionOf(filename));
}

/** The lower-cased extension with its dot (`.jpg`), or '' when the name has none. */
export function extensionOf(filename: string): string {
  const dot = filename.lastIndexOf('.');
  return dot <= 0 ? '' : filename.slice(dot).toLowerCase();
}
