// stream-line: the command line for Stream-Line Upload. Parses the command, builds the SDK
// client it needs, runs it, and turns failures into one line of words and an exit code:
// 0 done, 1 refused or failed, 2 wrong usage, 130 interrupted (run again to resume uploads).
import os from 'node:os';
import { parseArgs } from 'node:util';
import { createServiceClient, createUserSession, errorMessage, StreamLineError } from '../sdk/node.ts';
import { linkCommand, listCommand, removeCommand, tokenCommand, usageCommand, zipCommand } from './commands.ts';
import { parseDuration } from '../shared/format.ts';
import { progressFor } from './progress-output.ts';
import { ResumeState } from './resume-state.ts';
import { addressHint, requireServiceToken, requireToken, resolveSettings, UsageError, type Settings } from './settings.ts';
import { uploadCommand } from './upload-command.ts';

const HELP = `usage: stream-line <command> [options]

commands:
  upload <files…> [--folder F] [--link [--ttl 1h] [--inline]]
        upload, printing each file's key (and a signed link to it); run the
        same command again after an interruption to resume
  ls [--folder F] [--json]           list your files, newest first
  rm <keys…>                         delete files
  link <key> [--ttl 1h] [--inline]   print a signed download link
                                     (ttl: 90, 15m, 2h, 7d)
  zip <keys…> -o out.zip [--name N]  download several files as one ZIP
  usage [--json]                     storage used against your quota
  token <user> [--hours H]           mint a user token (service token needed)

options (or environment):
  --url URL          STREAM_LINE_URL    server (default http://127.0.0.1:8080)
  --token JWT        STREAM_LINE_TOKEN  your user token
  --service-token T  STREAM_LINE_SERVICE_TOKEN  the service token (for token)
                     STREAM_LINE_STATE  resume state file (default
                                        ~/.config/stream-line/uploads.json)`;

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  const { values: flags, positionals } = parseFlags(argv);
  const [command, ...args] = positionals;
  if (flags.help || command === undefined || command === 'help') {
    out(HELP);
    return command === undefined && !flags.help ? 2 : 0;
  }
  const settings = resolveSettings(flags, process.env, os.homedir());
  try {
    return await run(command, args, flags, settings);
  } catch (error) {
    if (isUsageError(error)) throw error;
    err(`stream-line: ${errorMessage(error)}`);
    if (error instanceof StreamLineError) err(`  (${error.code}${error.status ? `, HTTP ${error.status}` : ''})`);
    const hint = addressHint(error, settings.url);
    if (hint) err(`  ${hint}`);
    return 1;
  }
}

type Flags = ReturnType<typeof parseFlags>['values'];

function parseFlags(argv: string[]) {
  return parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      'service-token': { type: 'string' },
      folder: { type: 'string' },
      ttl: { type: 'string' },
      inline: { type: 'boolean' },
      link: { type: 'boolean' },
      output: { type: 'string', short: 'o' },
      name: { type: 'string' },
      hours: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
}

function isUsageError(error: unknown): boolean {
  return error instanceof UsageError || (error as { code?: string }).code?.startsWith('ERR_PARSE_ARGS') === true;
}

async function run(command: string, args: string[], flags: Flags, settings: Settings): Promise<number> {
  const session = () => createUserSession({ baseUrl: settings.url, token: requireToken(settings) });
  const need = (min: number, what: string) => {
    if (args.length < min) throw new UsageError(`${command} needs ${what}`);
  };
  const ttl = flags.ttl === undefined ? undefined : parseDuration(flags.ttl);
  if (ttl === null) throw new UsageError(`--ttl must be seconds or a duration like 15m, 2h, 7d (got "${flags.ttl}")`);

  switch (command) {
    case 'upload': {
      need(1, 'at least one file');
      const controller = new AbortController();
      const onSignal = () => controller.abort();
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      const failed = await uploadCommand(args, flags.folder, {
        session: session(),
        state: new ResumeState(settings.statePath),
        signal: controller.signal,
        progress: progressFor(process.stderr),
        ...(flags.link ? { link: { ...(ttl === undefined ? {} : { ttl }), disposition: flags.inline ? 'inline' : 'attachment' } } : {}),
        out,
        err,
      });
      if (controller.signal.aborted) {
        err('interrupted: run the same command again to resume');
        return 130;
      }
      return failed > 0 ? 1 : 0;
    }
    case 'ls':
      return listCommand(session(), flags.folder, flags.json ?? false, out).then(() => 0);
    case 'rm':
      need(1, 'at least one key');
      return removeCommand(session(), args, out).then(() => 0);
    case 'link': {
      need(1, 'a key');
      return linkCommand(session(), args[0]!, ttl, flags.inline ?? false, out, err).then(() => 0);
    }
    case 'zip':
      need(1, 'at least one key');
      if (!flags.output) throw new UsageError('zip needs -o <file.zip>');
      return zipCommand(session(), args, flags.output, flags.name, out).then(() => 0);
    case 'usage':
      return usageCommand(session(), flags.json ?? false, out).then(() => 0);
    case 'token': {
      need(1, 'a user id');
      const hours = flags.hours === undefined ? undefined : Number(flags.hours);
      const service = createServiceClient({ baseUrl: settings.url, serviceToken: requireServiceToken(settings) });
      return tokenCommand(service, args[0]!, hours, out, err).then(() => 0);
    }
    default:
      throw new UsageError(`unknown command "${command}" (see stream-line --help)`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    err(`stream-line: ${isUsageError(error) ? (error as Error).message : errorMessage(error)}`);
    process.exit(isUsageError(error) ? 2 : 1);
  },
);
