/**
 * The web door for scripts and what it keeps, on the real service and the real x4fast: the API with a Bearer
 * key (upload, state, files through the signed link, cancel, someone else's job), the OpenAPI document, a
 * six-file upload taken whole, the configured default model, private file modes.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Intake } from '../adapters/web/intake.js';
import { People, visitorFrom } from '../adapters/web/people.js';
import { silentLogger } from '../src/log.js';
import { scenePng, tempDir } from './helpers.js';
import { ServiceProcess, withConfig } from './service.js';
import { splitLink, startWeb, upload, type WebService } from './web-service.js';

let dir: string;
let running: WebService | undefined;

beforeEach(() => {
  dir = tempDir('enhancer-api-');
});
afterEach(async () => {
  await running?.service.stop();
  running = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

const KEY = 'a-long-random-script-key';
const OTHER = 'another-long-random-key';

/** Follows a job through the API until it has ended; the state it ended in. */
async function untilEnded(base: string, id: string, headers: Record<string, string>): Promise<Record<string, any>> {
  for (;;) {
    const state = (await (await fetch(`${base}/api/jobs/${id}`, { headers })).json()) as Record<string, any>;
    if (!['waiting', 'active', 'finishing'].includes(state.state)) return state;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe('the API for scripts', () => {
  it('takes format, quality and size: the file comes in that format, at that size, with its content type', async () => {
    running = await startWeb(dir);
    const { base } = running;
    const { body } = await upload(base, [{ name: 'scene.png', bytes: await scenePng(48, 32, 3) }], { format: 'webp', quality: '80', size: '100' });
    const { id, link } = body.jobs![0] as { id: string; link: string };
    const done = await untilEnded(base, id, {});
    expect(done).toMatchObject({ state: 'completed', result: { format: 'webp', output: { width: 100, height: 67 }, options: { format: 'webp', quality: 80, size: 100 } } });
    const { path: p, query } = splitLink(link);
    const answer = await fetch(`${base}${p}/file/result?${query}`);
    expect(answer.headers.get('content-type')).toBe('image/webp');
    const bytes = Buffer.from(await answer.arrayBuffer());
    expect([bytes.toString('latin1', 0, 4), bytes.toString('latin1', 8, 12)]).toEqual(['RIFF', 'WEBP']);
    expect(await sharp(bytes).metadata()).toMatchObject({ format: 'webp', width: 100, height: 67 });
    const refused = await upload(base, [{ name: 'scene.png', bytes: await scenePng(48, 32, 3) }], { format: 'gif' });
    expect(refused.body.jobs![0].reason).toMatch(/^format must be png, webp, jpeg or avif \(got "gif"\)/);
  });

  it('upload with a Bearer key, read the state, fetch the PNG through the signed link, cancel; a wrong key and someone else\'s job are refused', async () => {
    running = await startWeb(dir, {}, { ENHANCER_WEB_HOST: '0.0.0.0', ENHANCER_WEB_KEY: `${KEY},${OTHER}` });
    const { base, service } = running;
    const bearer = { authorization: `Bearer ${KEY}` };
    const file = { name: 'scene.png', bytes: await scenePng(48, 32, 3) };

    expect(await upload(base, [file])).toEqual({ status: 403, body: { error: 'uploads here need an access key: enter it on the page first' } });
    expect(await upload(base, [file], {}, '', { authorization: 'Bearer not-a-key-of-this-service' })).toEqual({ status: 401, body: { error: 'that is not an access key of this service' } });

    const { status, body } = await upload(base, [file], { scale: '2' }, '', bearer);
    expect(status).toBe(200);
    const { id, link } = body.jobs![0] as { id: string; link: string; name: string };
    expect(link).toBe(`/job/${id}?${splitLink(link).query}`);
    const done = await untilEnded(base, id, bearer);
    expect(done).toMatchObject({ id, state: 'completed', name: 'scene.png', link, result: { output: { width: 96, height: 64 }, options: { model: 'x4fast', scale: 2 } } });
    const { path: p, query } = splitLink(link);
    const png = Buffer.from(await (await fetch(`${base}${p}/file/result?${query}`)).arrayBuffer());
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 96, height: 64 });

    // Another key (another script) and no key at all learn nothing of it, not even that it exists.
    for (const headers of [{ authorization: `Bearer ${OTHER}` }, {}] as Array<Record<string, string>>) {
      const other = await fetch(`${base}/api/jobs/${id}`, { headers });
      expect(other.status).toBe(headers.authorization ? 404 : 403);
    }
    const ended = await fetch(`${base}/api/jobs/${id}`, { method: 'DELETE', headers: bearer });
    expect([ended.status, await ended.json()]).toEqual([409, { error: 'the job has already ended' }]);

    // Cancel while it waits behind a job that runs: it ends cancelled, never run.
    const two = await upload(base, [{ name: 'a.png', bytes: await scenePng(320, 320, 1) }, { name: 'b.png', bytes: await scenePng(48, 48, 2) }], {}, '', bearer);
    const waiting = two.body.jobs![1].id!;
    const cancelled = await fetch(`${base}/api/jobs/${waiting}`, { method: 'DELETE', headers: bearer });
    expect([cancelled.status, await cancelled.json()]).toEqual([200, { id: waiting, state: 'cancelled' }]);
    expect(await untilEnded(base, waiting, bearer)).toMatchObject({ state: 'cancelled', reason: 'cancelled by its owner' });
    await untilEnded(base, two.body.jobs![0].id!, bearer);
    expect(service.lines('job started').map((l) => l.name)).not.toContain('b.png');
    expect(JSON.stringify(service.logs)).not.toContain(KEY);
  }, 90_000);

  it('describes itself in an OpenAPI 3 document generated from the routes', async () => {
    running = await startWeb(dir);
    const doc = (await (await fetch(`${running.base}/api/openapi.json`)).json()) as { openapi: string; paths: Record<string, Record<string, any>> };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual(['/api/jobs', '/api/jobs/{id}', '/api/session', '/job/{id}/events', '/job/{id}/file/{kind}', '/job/{id}/state']);
    expect(Object.keys(doc.paths['/api/jobs/{id}']).sort()).toEqual(['delete', 'get']);
    const post = doc.paths['/api/jobs'].post;
    expect(Object.keys(post.requestBody.content)).toEqual(['multipart/form-data']);
    expect(Object.keys(post.requestBody.content['multipart/form-data'].schema.properties).sort()).toEqual(['ask', 'file', 'format', 'model', 'pdf', 'quality', 'scale', 'size', 'tune']);
    expect(post.security).toEqual([{ accessKey: [] }]);
  });
});

describe('uploads', () => {
  it('six files in one upload are taken whole, with the per-person limit at 3', async () => {
    running = await startWeb(dir, { limits: { queuedPerOwner: 3 } });
    const files = await Promise.all([1, 2, 3, 4, 5, 6].map(async (seed) => ({ name: `${seed}.png`, bytes: await scenePng(24, 24, seed) })));
    const { status, body } = await upload(running.base, files);
    expect(status).toBe(200);
    expect(body.jobs!.map((j) => [j.name, Boolean(j.link)])).toEqual(files.map((f) => [f.name, true]));
    await running.service.count('job completed', 6);
  });

  it('a file that names no model runs the configured default (ENHANCER_MODEL), in the result and on its page', async () => {
    running = await startWeb(dir, {}, { ENHANCER_MODEL: 'x4fast' });
    const { body } = await upload(running.base, [{ name: 'a.png', bytes: await scenePng(24, 24, 4) }]);
    const { path: p, query } = splitLink(body.jobs![0].link!);
    await running.service.count('job completed', 1);
    await running.service.count('kept for its page', 1);
    const state = (await (await fetch(`${running.base}${p}/state?${query}`)).json()) as { options: { model: string }; result: { options: { model: string } } };
    // Before, `{ model: undefined }` overwrote the default and the job ran x4plus, 15x heavier.
    expect([state.options.model, state.result.options.model]).toEqual(['x4fast', 'x4fast']);
  });

  it('with auto, answers which model runs, about how long it takes and why, and runs that model', async () => {
    running = await startWeb(dir, {}, { ENHANCER_MODEL: 'auto' });
    const cat = fs.readFileSync(path.join(import.meta.dirname, '..', 'models', 'calibration', 'chelsea.png'));
    const { body } = await upload(running.base, [{ name: 'cat.png', bytes: cat }]);
    const job = body.jobs![0] as { model: string; etaSeconds: number; why: string; link: string };
    // A 128x128 photo: x4plus fits the 2-minute target.
    expect(job).toMatchObject({ model: 'x4plus', why: 'photo: x4plus model', other: { model: 'x4fast', label: expect.stringMatching(/^Use x4fast instead \(about .+\)$/) } });
    expect(job.etaSeconds).toBeGreaterThan(0);
    expect(job.etaSeconds).toBeLessThanOrEqual(120);
    await running.service.count('kept for its page', 1);
    const { path: p, query } = splitLink(job.link);
    const state = (await (await fetch(`${running.base}${p}/state?${query}`)).json()) as { result: { options: { model: string }; output: { width: number } } };
    expect([state.result.options.model, state.result.output.width]).toEqual(['x4plus', 512]);
  });

  it('an unexpected failure gives the person a reference to the log line, never a path', async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = { ...silentLogger, error: (fields: Record<string, unknown>) => lines.push(fields) } as unknown as typeof silentLogger;
    const emfile = Object.assign(new Error("EMFILE: too many open files, open '/srv/enhancer/data/web/keep/x/input'"), { code: 'EMFILE' });
    const keep = { add: async () => Promise.reject(emfile), remove: async () => {} };
    const intake = new Intake({ queue: {} as never, keep: keep as never, links: {} as never, people: new People(3), keepFor: 1000, maxPixels: 1e6, defaultModel: 'x4fast', logger });
    const visitor = visitorFrom({ address: '127.0.0.1' });
    const answer = await intake.submit({ name: 'a.png', bytes: await scenePng(8, 8) }, { options: {}, report: false }, visitor, 'u', 'en');
    expect(answer.reason).toMatch(/^something went wrong on the server; its log has the details under reference [0-9a-f]{8}$/);
    expect(answer.reason).not.toContain('/srv');
    expect(lines).toEqual([expect.objectContaining({ ref: answer.reason!.slice(-8), err: emfile })]);
  });
});

describe('what the door keeps', () => {
  it('the data folder is 0700 and its files 0600; a link.key others can read stops start-up with one line', async () => {
    running = await startWeb(dir);
    const { body } = await upload(running.base, [{ name: 'a.png', bytes: await scenePng(24, 24, 5) }]);
    expect(body.jobs![0].link).toBeDefined();
    await running.service.count('kept for its page', 1);
    const data = path.join(dir, 'data');
    const modes: string[] = [];
    const walk = (at: string) => {
      for (const entry of fs.readdirSync(at, { withFileTypes: true })) {
        const full = path.join(at, entry.name);
        const mode = fs.statSync(full).mode & 0o777;
        if (entry.isDirectory()) {
          if (mode !== 0o700) modes.push(`${path.relative(data, full)}/ ${mode.toString(8)}`);
          walk(full);
        } else if (mode !== 0o600) modes.push(`${path.relative(data, full)} ${mode.toString(8)}`);
      }
    };
    expect((fs.statSync(data).mode & 0o777).toString(8)).toBe('700');
    walk(data);
    expect(modes).toEqual([]);
    expect(fs.existsSync(path.join(data, 'web', 'keep'))).toBe(true);

    await running.service.stop();
    const key = path.join(data, 'web', 'link.key');
    fs.chmodSync(key, 0o644);
    const again = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { enabled: false } }), ENHANCER_WEB_PORT: String(running.port) });
    expect((await again.exited).code).toBe(1);
    await again.closed;
    expect(again.stderr.filter(Boolean)).toEqual([`error: web: ${key} is readable by other users (mode 644): run chmod 600 on it, or remove it to make a new one (old links stop working)`]);
  });
});
