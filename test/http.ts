/**
 * HTTP for tests: a free port to give a server, a GET that returns what a person with curl would see, and one
 * sample read out of Prometheus text.
 */
import net from 'node:net';

/** A port nothing listens on right now, on 127.0.0.1. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** GET `route` on 127.0.0.1:`port`: status, content type and body. */
export async function get(port: number, route: string): Promise<{ status: number; type: string; body: string }> {
  const response = await fetch(`http://127.0.0.1:${port}${route}`);
  return { status: response.status, type: response.headers.get('content-type') ?? '', body: await response.text() };
}

/** The value of one sample in Prometheus text, e.g. `metric(text, 'enhancer_jobs', { state: 'waiting' })`; undefined if absent. */
export function metric(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = Object.fromEntries([...(match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) return Number(match[3]);
  }
  return undefined;
}
