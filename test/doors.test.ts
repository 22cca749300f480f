/**
 * Each front door starts on its own: the real service in a child process with the hot folder on and a chat door
 * whose platform cannot be reached (nothing listens on its port, or something accepts the connection and never
 * answers), or refuses the token. The hot folder answers meanwhile, `/healthz` says which door is down and why,
 * a stop signal ends the service within its grace, and a refused token stops start-up before anything is taken
 * from the inbox.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeBotApi } from './fake-bot-api.js';
import { FakeDiscord } from './fake-discord.js';
import { scenePng, tempDir } from './helpers.js';
import { freePort, get } from './http.js';
import { processTree, untilGone } from './processes.js';
import { listing, ServiceProcess, withConfig } from './service.js';

const TELEGRAM_TOKEN = '123456789:AAH-fake_token-for-the-door-tests';
const DISCORD_TOKEN = `MTIzNDU2Nzg5.bot-token.${'D00r'.repeat(8)}`;
/** The running job's grace on shutdown: stopping must take no longer than this, whatever a door is doing. */
const GRACE_MS = 10_000;

let dir: string;
let cleanup: Array<() => Promise<unknown>>;

beforeEach(() => {
  dir = tempDir('enhancer-doors-');
  fs.mkdirSync(path.join(dir, 'inbox'), { recursive: true });
  cleanup = [];
});
afterEach(async () => {
  for (const step of cleanup.reverse()) await step();
  fs.rmSync(dir, { recursive: true, force: true });
});

function start(env: Record<string, string>): ServiceProcess {
  const service = new ServiceProcess(dir, { ...withConfig(dir, { shutdownGraceMs: GRACE_MS, hotfolder: { settleMs: 200 } }), ...env });
  cleanup.push(() => service.stop('SIGKILL'));
  return service;
}

/** A server on 127.0.0.1 that accepts connections and never answers: a firewall that swallows replies. */
async function blackHole(): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.push(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => server.close(resolve));
  });
  return (server.address() as net.AddressInfo).port;
}

interface Health {
  ok: boolean;
  checks: Array<{ name: string; ok: boolean; problem?: string }>;
}

async function health(port: number): Promise<{ status: number; body: Health }> {
  const answer = await get(port, '/healthz');
  return { status: answer.status, body: JSON.parse(answer.body) as Health };
}

/** Drops an image into the inbox and waits for its PNG in the outbox: the hot folder and the worker run. */
async function hotFolderAnswers(s: ServiceProcess, name: string): Promise<void> {
  fs.writeFileSync(path.join(dir, 'inbox', name), await scenePng(32, 24, 5));
  await s.until(() => listing(path.join(dir, 'outbox')).includes(name), `${name} in the outbox`);
  expect(await sharp(path.join(dir, 'outbox', name)).metadata()).toMatchObject({ width: 128, height: 96 });
}

/** Sends SIGTERM and checks the service exits 0 within the grace, leaving no process behind. */
async function stopsWithinGrace(s: ServiceProcess): Promise<void> {
  const procs = processTree(s.pid);
  const asked = Date.now();
  const exit = await s.stop('SIGTERM');
  const took = Date.now() - asked;
  expect(exit).toEqual({ code: 0, signal: null });
  expect(took).toBeLessThan(GRACE_MS);
  await untilGone(procs);
}

describe('a chat door whose platform cannot be reached at start', () => {
  it('Telegram with nothing listening: the hot folder answers, /healthz names the door, SIGTERM stops it; the door comes up when the Bot API does', async () => {
    const port = await freePort();
    const http = await freePort();
    const s = start({ TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN, TELEGRAM_API_ROOT: `http://127.0.0.1:${port}`, ENHANCER_HTTP_PORT: String(http) });
    await s.started();
    const unreachable = s.lines('cannot reach Telegram; trying again in the background');
    expect(unreachable).toHaveLength(1);
    expect(unreachable[0]).toMatchObject({ level: 40, adapter: 'telegram', retryInS: 5 });
    expect(unreachable[0].why).toMatch(/ECONNREFUSED/);
    await hotFolderAnswers(s, 'first.png');

    const down = await health(http);
    expect(down.status).toBe(503);
    const door = down.body.checks.find((c) => c.name === 'telegram door connected');
    expect(door).toMatchObject({ ok: false, problem: expect.stringMatching(/^cannot reach Telegram \(.*ECONNREFUSED.*\); trying again$/) });
    expect(down.body.checks.filter((c) => !c.ok)).toEqual([door]);

    // The Bot API comes up on that port: the door connects on its next try (5 s after the first) and answers.
    const api = await new FakeBotApi(TELEGRAM_TOKEN).listen(port);
    cleanup.push(() => api.close());
    await s.count('Telegram bot polling', 1);
    expect((await health(http)).status).toBe(200);
    const photo = api.sendPhoto({ id: 7, first_name: 'Ann' }, await scenePng(24, 24, 6), { width: 24, height: 24 });
    await api.waitFor((c) => c.method === 'sendDocument' && c.params.reply_parameters?.message_id === photo.message_id, 'the enhanced PNG');
    expect(s.lines('cannot reach Telegram; trying again in the background')).toHaveLength(1);
    await stopsWithinGrace(s);
  });

  it('Telegram that accepts the connection and never answers: the hot folder answers and SIGTERM stops the service within the grace', async () => {
    const port = await blackHole();
    const s = start({ TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN, TELEGRAM_API_ROOT: `http://127.0.0.1:${port}` });
    await s.started();
    expect(s.lines('cannot reach Telegram; trying again in the background')).toHaveLength(1);
    await hotFolderAnswers(s, 'quiet.png');
    await stopsWithinGrace(s);
  });

  it('a stop signal while the door checks still wait for an answer ends start-up at once', async () => {
    const port = await blackHole();
    const s = start({ TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN, TELEGRAM_API_ROOT: `http://127.0.0.1:${port}` });
    await s.count('checking the front doors', 1);
    await stopsWithinGrace(s);
    expect(s.lines('service started')).toEqual([]);
    expect(s.stderr.filter(Boolean)).toEqual([]);
  });

  it('Discord that accepts the connection and never answers: the hot folder answers, /healthz names the door, SIGTERM stops it', async () => {
    const port = await blackHole();
    const http = await freePort();
    const s = start({ DISCORD_TOKEN, DISCORD_APPLICATION_ID: '1', DISCORD_API_ROOT: `http://127.0.0.1:${port}/api`, ENHANCER_HTTP_PORT: String(http) });
    await s.started();
    expect(s.lines('cannot reach Discord; trying again in the background')).toHaveLength(1);
    await hotFolderAnswers(s, 'discord-down.png');
    const door = (await health(http)).body.checks.find((c) => c.name === 'discord door connected');
    expect(door).toMatchObject({ ok: false, problem: expect.stringMatching(/^cannot reach Discord \(.+\); trying again$/) });
    await stopsWithinGrace(s);
  });
});

describe('a chat door whose platform goes away after it connected', () => {
  it('Telegram: /healthz says polling fails while the Bot API is away (grammY retries silently), and is well again once it is back', async () => {
    const api = await new FakeBotApi(TELEGRAM_TOKEN).listen();
    const port = api.port;
    const http = await freePort();
    const s = start({ ENHANCER_HOTFOLDER: 'false', TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN, TELEGRAM_API_ROOT: api.root, ENHANCER_HTTP_PORT: String(http) });
    await s.count('Telegram bot polling', 1);
    expect((await health(http)).status).toBe(200);

    await api.close();
    await s.count('Telegram polling fails; grammY tries again', 1);
    const down = await health(http);
    expect(down.status).toBe(503);
    expect(down.body.checks.find((c) => c.name === 'telegram door connected')).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^cannot poll Telegram for updates \(.+\); trying again$/),
    });
    expect(JSON.stringify(down.body)).not.toContain(TELEGRAM_TOKEN);

    const back = await new FakeBotApi(TELEGRAM_TOKEN).listen(port);
    cleanup.push(() => back.close());
    await s.count('Telegram polling works again', 1);
    expect((await health(http)).status).toBe(200);
    await stopsWithinGrace(s);
  });
});

describe('stopping while a door waits on its platform', () => {
  it('ends the service within the grace while an upload to Telegram never gets an answer; the answer goes out at the next start', async () => {
    const api = await new FakeBotApi(TELEGRAM_TOKEN).listen();
    cleanup.push(() => api.close());
    const env = { ENHANCER_HOTFOLDER: 'false', TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN, TELEGRAM_API_ROOT: api.root };
    const s = start(env);
    await s.started();
    api.holdOnce('sendDocument');
    const photo = api.sendPhoto({ id: 7, first_name: 'Ann' }, await scenePng(24, 24, 9), { width: 24, height: 24 });
    await s.until(() => api.calls.some((c) => c.method === 'sendDocument' && c.status === -1), 'the upload held by the server');
    const asked = Date.now();
    expect(await s.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    // The delivery under way gets the grace, then the socket is left: nothing is lost, it is tried again.
    expect(Date.now() - asked).toBeLessThan(GRACE_MS + 5_000);
    expect(s.lines('stopped')).toHaveLength(1);
    expect(s.lines('the process did not end by itself after stopping; ending it')).toHaveLength(1);

    const again = start(env);
    await again.started();
    await api.waitFor((c) => c.method === 'sendDocument' && c.params.reply_parameters?.message_id === photo.message_id, 'the PNG after the restart');
    await stopsWithinGrace(again);
  });
});

describe('a chat door whose token is refused', () => {
  /** Starts with an image already in the inbox; checks the exit, the one line and that the image was not touched. */
  async function refused(env: Record<string, string>, line: RegExp, token: string): Promise<void> {
    const image = await scenePng(24, 24, 8);
    fs.writeFileSync(path.join(dir, 'inbox', 'waiting.png'), image);
    const s = start(env);
    const procs = processTree(s.pid);
    expect((await s.exited).code).toBe(1);
    await s.closed;
    await untilGone(procs);
    const said = s.stderr.filter(Boolean);
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(line);
    expect(said.join('') + JSON.stringify(s.logs)).not.toContain(token);
    // Untouched: still in the inbox with the same bytes; nothing working, done or failed.
    expect(fs.readFileSync(path.join(dir, 'inbox', 'waiting.png')).equals(image)).toBe(true);
    for (const folder of ['.working', 'done', 'failed']) expect(listing(path.join(dir, 'inbox', folder)), folder).toEqual([]);
    expect(s.lines('job queued')).toEqual([]);
  }

  it('Telegram answering 401: exit 1, one line without the token, no process left, the inbox untouched', async () => {
    const api = await new FakeBotApi(TELEGRAM_TOKEN).listen();
    cleanup.push(() => api.close());
    const wrong = '987654321:AAwrong-token-for-the-door-tests';
    await refused(
      { TELEGRAM_BOT_TOKEN: wrong, TELEGRAM_API_ROOT: api.root },
      /^error: telegram: the Bot API server refused the bot \(getMe: 401 Unauthorized\); check TELEGRAM_BOT_TOKEN and TELEGRAM_API_ROOT$/,
      wrong,
    );
  });

  it('Discord answering 401: exit 1, one line without the token, no process left, the inbox untouched', async () => {
    const fake = new FakeDiscord({ token: DISCORD_TOKEN });
    await fake.listen();
    cleanup.push(() => fake.close());
    const wrong = `MTIz.wrong-token.${'W'.repeat(30)}`;
    await refused({ DISCORD_TOKEN: wrong, DISCORD_API_ROOT: fake.apiRoot }, /^error: Discord refused the bot token: check DISCORD_TOKEN \(.*401.*\)$/, wrong);
  });
});
