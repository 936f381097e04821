// A clamd client over its INSTREAM protocol (clamd(8)): `zINSTREAM\0`, then chunks each prefixed by
// its length (4 bytes, big-endian), then a zero-length chunk; clamd answers one line ending in \0:
//   "stream: OK"                          → clean
//   "stream: <Signature> FOUND"           → infected
//   "... ERROR" (e.g. "INSTREAM size limit exceeded. ERROR", past StreamMaxLength) → error
// The file is streamed from storage with backpressure, never held in memory. clamd may answer and
// close the socket before the whole stream was sent (the size limit): the reply already read wins.
// A refused connection or a timeout is not a verdict: the caller retries later (ClamdUnavailable).
import net from 'node:net';
import type { Readable } from 'node:stream';
import type { ClamdConfig } from '../config.ts';

export type Verdict = { status: 'clean' } | { status: 'infected'; signature: string } | { status: 'error'; message: string };

/** clamd could not be reached or did not answer in time: try again later. */
export class ClamdUnavailable extends Error {}

const CHUNK = 64 * 1024;

export interface Clamd {
  scan(source: Readable): Promise<Verdict>;
  ping(): Promise<boolean>;
}

export function createClamd(config: Pick<ClamdConfig, 'address' | 'timeoutMs'>): Clamd {
  const connect = (): net.Socket =>
    'socket' in config.address ? net.createConnection(config.address.socket) : net.createConnection(config.address.port, config.address.host);

  /** Opens a connection, sends `command`, lets `send` write more, resolves with clamd's reply line. */
  function converse(command: string, send?: (socket: net.Socket) => Promise<void>): Promise<string> {
    return new Promise<string>((resolve, reject) => {
      const socket = connect();
      let reply = '';
      let connected = false;
      let settled = false;
      const finish = (error: Error | null) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        socket.destroy();
        if (error) reject(error);
        else resolve(reply.replace(/\0+$/, '').trim());
      };
      const timer = setTimeout(() => finish(new ClamdUnavailable(`clamd did not answer within ${config.timeoutMs} ms`)), config.timeoutMs);
      socket.setEncoding('utf8');
      socket.on('data', (text: string) => {
        reply += text;
        if (reply.includes('\0')) finish(null);
      });
      socket.on('end', () => finish(reply ? null : new ClamdUnavailable('clamd closed the connection without a reply')));
      socket.on('error', (error: NodeJS.ErrnoException) => {
        // A reply already read (clamd closes mid-stream past StreamMaxLength) is the answer.
        if (reply) return finish(null);
        finish(connected && error.code === 'EPIPE' ? new Error(`clamd closed the stream: ${error.message}`) : new ClamdUnavailable(`clamd: ${error.code ?? error.message}`));
      });
      socket.on('connect', () => {
        connected = true;
        socket.write(`z${command}\0`);
        if (!send) return;
        send(socket).catch((error: Error) => {
          // Once clamd has answered, a write it no longer reads does not matter.
          if (!reply) finish(error);
        });
      });
    });
  }

  return {
    async ping() {
      try {
        return (await converse('PING')) === 'PONG';
      } catch {
        return false;
      }
    },

    async scan(source) {
      const line = await converse('INSTREAM', async (socket) => {
        const header = Buffer.alloc(4);
        const write = (data: Buffer) =>
          new Promise<void>((resolve, reject) => {
            if (socket.destroyed || socket.writableEnded) return reject(new Error('clamd closed the stream'));
            if (socket.write(data)) return resolve();
            const onDrain = () => {
              socket.off('close', onClose);
              resolve();
            };
            const onClose = () => {
              socket.off('drain', onDrain);
              reject(new Error('clamd closed the stream'));
            };
            socket.once('drain', onDrain);
            socket.once('close', onClose);
          });
        try {
          for await (const piece of source) {
            const buffer = piece as Buffer;
            for (let at = 0; at < buffer.length; at += CHUNK) {
              const part = buffer.subarray(at, at + CHUNK);
              header.writeUInt32BE(part.length);
              await write(Buffer.from(header));
              await write(part);
            }
          }
          await write(Buffer.alloc(4)); // the zero-length chunk: end of stream
        } finally {
          source.destroy();
        }
      });
      return parseReply(line);
    },
  };
}

export function parseReply(line: string): Verdict {
  const found = /^stream: (.+) FOUND$/.exec(line);
  if (found) return { status: 'infected', signature: found[1]! };
  if (line === 'stream: OK') return { status: 'clean' };
  return { status: 'error', message: line || 'empty reply' };
}
