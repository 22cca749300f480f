/**
 * HTTP as an attacker sends it: raw bytes on a socket (half a body, a trickle, nothing), and event streams held
 * open, each resolving when the server answers or closes.
 */
import http from 'node:http';
import net from 'node:net';

export interface RawExchange {
  socket: net.Socket;
  /** Everything the server sent, once it closed the connection. */
  answer: Promise<string>;
  /** Milliseconds from the first byte sent to the server closing the connection. */
  closedAfter: Promise<number>;
}

/** Sends `head` (and `body`, if any) on a fresh connection to 127.0.0.1:`port`, and keeps it open. */
export function rawRequest(port: number, head: string, body: string | Buffer = ''): Promise<RawExchange> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let start = 0;
    const closed = new Promise<void>((done) => socket.on('close', () => done()));
    socket.on('data', (chunk) => chunks.push(chunk));
    socket.on('error', () => {});
    socket.once('connect', () => {
      start = Date.now();
      socket.write(head);
      if (body.length) socket.write(body);
      resolve({
        socket,
        answer: closed.then(() => Buffer.concat(chunks).toString('utf8')),
        closedAfter: closed.then(() => Date.now() - start),
      });
    });
    socket.once('error', reject);
  });
}

export interface OpenStream {
  status: number;
  /** The first chunk of the body (an event stream's `state`, or a refusal's line). */
  first: string;
  /** Resolves when the server ends the stream. */
  ended: Promise<void>;
  close(): void;
}

/** Opens `path` as an event stream (or whatever it answers) and resolves once its first bytes are in. */
export function openStream(port: number, path: string, headers: Record<string, string> = {}): Promise<OpenStream> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, headers, agent: false }, (response) => {
      const ended = new Promise<void>((done) => {
        response.on('end', () => done());
        response.on('close', () => done());
      });
      response.once('data', (chunk: Buffer) =>
        resolve({ status: response.statusCode ?? 0, first: chunk.toString('utf8'), ended, close: () => request.destroy() }),
      );
    });
    request.on('error', reject);
  });
}
