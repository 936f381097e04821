// DATABASE_URL: where the records live when several instances share them (PostgreSQL). Unset, the
// server keeps them in SQLite in DATA_DIR, as one instance always has.
//
// The answers here are configuration problems, one line each (server/config.ts). A URL is never
// repeated whole in them: it usually carries a password.

export function parseDatabaseUrl(raw: string): { url: string } | { problem: string } {
  let parsed: URL;
  try {
    parsed = new URL(raw);
  } catch {
    return { problem: 'DATABASE_URL: expected a URL such as postgres://user:password@db.example:5432/stream_line' };
  }
  if (parsed.protocol !== 'postgres:' && parsed.protocol !== 'postgresql:') {
    return { problem: `DATABASE_URL: expected a postgres:// URL, got one starting ${parsed.protocol}//` };
  }
  if (parsed.hostname === '' || parsed.pathname.length <= 1) {
    return { problem: 'DATABASE_URL: expected a host and a database name, as in postgres://user:password@db.example:5432/stream_line' };
  }
  return { url: raw };
}

/** The combinations that cannot work with a shared database, one line each. */
export function databaseUrlProblems(storage: string): string[] {
  const problems: string[] = [];
  if (storage === 'file') {
    // Every instance would keep the bytes of the uploads it served on its own disk, while the
    // shared records send the next request of that upload, or its download, to any instance.
    problems.push('DATABASE_URL: several instances share one database, but STORAGE=file keeps each instance\'s bytes on its own disk in DATA_DIR; set STORAGE=s3 with a bucket every instance reaches');
  }
  return problems;
}
