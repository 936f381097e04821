// Upload-Metadata as clients in the field send it. tus 1.0 separates pairs with a bare comma, and
// @tus/server refuses anything else; TUSKit 3.0–3.1.4 sends "key value, key value". Keys never
// contain spaces and base64 values never do, so the space after a comma carries no meaning and is
// dropped before tus parses the header.

/** `headers` with Upload-Metadata normalized, or the same object when nothing needed changing. */
export function lenientMetadata(headers: Headers): Headers {
  const raw = headers.get('upload-metadata');
  if (raw === null || !/,\s|\s,|^\s|\s$/.test(raw)) return headers;
  const normalized = raw.split(',').map((pair) => pair.trim()).join(',');
  const copy = new Headers(headers);
  copy.set('upload-metadata', normalized);
  return copy;
}
