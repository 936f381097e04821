// The only reader of process.env: loadConfig → start → SIGTERM/SIGINT drain.
import { ConfigError, loadConfig } from './config.ts';
import { startServer } from './start.ts';

async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig(process.env);
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) console.error(`configuration error: ${problem}`);
    process.exit(2);
  }
  const server = await startServer(config);
  const { secrets } = server.services;
  const lines = [
    `Stream-Line Upload is listening on ${server.url} (data in ${config.dataDir}, storage: ${config.storage})`,
    secrets.generated.length > 0 ? `  Generated secrets (${secrets.generated.join(', ')}) are kept in ${secrets.keptIn}.` : '',
    `  Mint a user token:      TOKEN=$(npm run -s token -- alice)`,
    `  Create an upload:       curl -i -X POST ${server.url}/v1/uploads -H "Authorization: Bearer $TOKEN" -H "Tus-Resumable: 1.0.0" -H "Upload-Length: 5"`,
    `  Send its bytes:         printf hello | curl -i -X PATCH <Location> -H "Authorization: Bearer $TOKEN" -H "Tus-Resumable: 1.0.0" -H "Upload-Offset: 0" -H "Content-Type: application/offset+octet-stream" --data-binary @-`,
    `  List your files:        curl ${server.url}/v1/files/all -H "Authorization: Bearer $TOKEN"`,
    `  Or in a browser:        ${server.url}/ (paste the token); API docs at ${server.url}/docs`,
  ].filter(Boolean);
  // Human guidance goes to stderr; stdout stays one JSON log line per event.
  console.error(lines.join('\n'));

  const shutdown = (signal: string) => {
    server.services.log.info({ signal }, 'shutting down: finishing in-flight requests');
    server.close().then(
      () => process.exit(0),
      (error: unknown) => {
        server.services.log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((error: unknown) => {
  console.error(`start-up failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exit(1);
});
