/**
 * The service with its web door on a free port of 127.0.0.1, and what a browser's requests would get from it.
 */
import { expect } from 'vitest';
import { freePort } from './http.js';
import { ServiceProcess, withConfig } from './service.js';

export interface WebService {
  service: ServiceProcess;
  port: number;
  /** `http://127.0.0.1:<port>` */
  base: string;
}

/**
 * Starts the service in `dir` with the web door on (hot folder off, x4fast), `config` written as its config file,
 * and waits until it has started. `port` reuses one (a restart on the same address).
 */
export async function startWeb(dir: string, config: object = {}, env: Record<string, string> = {}, port?: number): Promise<WebService> {
  port ??= await freePort();
  const service = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { enabled: false }, ...config }), ENHANCER_WEB_PORT: String(port), ...env });
  await service.started();
  return { service, port, base: `http://127.0.0.1:${port}` };
}

/** The path and the query of a job link, for building its other addresses. */
export function splitLink(link: string): { path: string; query: string; id: string; expires: number } {
  const [path, query] = link.split('?');
  return { path, query, id: path.split('/').pop()!, expires: Number(new URLSearchParams(query).get('e')) };
}

/** Uploads files through the door's upload endpoint as the page does (options first), with a visitor's cookies. */
export async function upload(base: string, files: Array<{ name: string; bytes: Uint8Array }>, fields: Record<string, string> = {}, cookie = '', headers: Record<string, string> = {}) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  for (const f of files) form.append('file', new Blob([new Uint8Array(f.bytes)]), f.name);
  const response = await fetch(`${base}/api/jobs`, { method: 'POST', body: form, headers: { ...headers, ...(cookie ? { cookie } : {}) } });
  return { status: response.status, body: (await response.json()) as { jobs?: Array<{ name: string; id?: string; link?: string; reason?: string; model?: string; etaSeconds?: number; why?: string }>; error?: string } };
}

/**
 * Follows a chat answer's link to its job page as a person would: the page opens, the link lasts `web.keepFor`
 * (7 days), the job is completed; returns the link's parts, the job's signature and the PNG behind the link.
 */
export async function followChatLink(publicUrl: string, url: string) {
  const link = splitLink(url.slice(publicUrl.length));
  expect(link.expires).toBeGreaterThan(Date.now() + 7 * 86_400_000 - 600_000);
  expect((await fetch(url)).status).toBe(200);
  const state = (await (await fetch(`${publicUrl}${link.path}/state?${link.query}`)).json()) as { state: string; result: { signature: string } };
  expect(state.state).toBe('completed');
  const png = Buffer.from(await (await fetch(`${publicUrl}${link.path}/file/result?${link.query}`)).arrayBuffer());
  return { link, signature: state.result.signature, png };
}
