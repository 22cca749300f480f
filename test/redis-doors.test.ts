/**
 * Every door on the queue on Redis: a front process with the web page, the Telegram bot and the Discord bot (each
 * against its fake on 127.0.0.1) and a worker process, each a real `enhancer serve --role …` on the real x4fast,
 * against a real redis-server of the test's own. What a person sees is the same as on the in-process queue: the
 * page's progress and download, the chat's PNG 4x.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeBotApi } from './fake-bot-api.js';
import { FakeDiscord, user, type Call } from './fake-discord.js';
import { scenePng, tempDir } from './helpers.js';
import { freePort } from './http.js';
import { RedisServer, redisMissing } from './redis-server.js';
import { ServiceProcess, withConfig } from './service.js';
import { splitLink, upload } from './web-service.js';

const TELEGRAM_TOKEN = '123456789:AAH-fake_token-for-the-redis-doors';
const DISCORD_TOKEN = `MTIzNDU2Nzg5.bot-token.${'R3d1s'.repeat(8)}`;

let dir: string;
let redis: RedisServer;
let processes: ServiceProcess[];
let fakes: Array<{ close(): Promise<void> }>;

beforeEach(async () => {
  if (redisMissing) return;
  dir = tempDir('enhancer-redis-doors-');
  redis = await RedisServer.start();
  processes = [];
  fakes = [];
});
afterEach(async () => {
  if (redisMissing) return;
  for (const p of processes) await p.stop('SIGKILL');
  for (const f of fakes) await f.close();
  await redis.remove();
  fs.rmSync(dir, { recursive: true, force: true });
});

function role(name: string, args: string[], env: Record<string, string>, config: object = {}): ServiceProcess {
  fs.mkdirSync(path.join(dir, name), { recursive: true });
  const p = new ServiceProcess(path.join(dir, name), { ...withConfig(path.join(dir, name), config), ENHANCER_REDIS_URL: redis.url, ENHANCER_TILE: '64', ENHANCER_HOTFOLDER: 'false', ...env }, 'direct', args);
  processes.push(p);
  return p;
}

describe.skipIf(redisMissing)('every door on the queue on Redis', () => {
  it('the web page, Telegram and Discord on a front, answered by a worker in another process', async () => {
    const telegram = await new FakeBotApi(TELEGRAM_TOKEN).listen();
    const discord = new FakeDiscord({ token: DISCORD_TOKEN });
    await discord.listen();
    fakes.push(telegram, discord);
    const webPort = await freePort();
    const front = role('front', ['--role', 'front'], {
      ENHANCER_WEB_PORT: String(webPort),
      TELEGRAM_BOT_TOKEN: TELEGRAM_TOKEN,
      TELEGRAM_API_ROOT: telegram.root,
      DISCORD_TOKEN,
      DISCORD_APPLICATION_ID: discord.application,
      DISCORD_API_ROOT: discord.apiRoot,
      DISCORD_GUILD_ID: discord.guild.id,
    }, { discord: { progressEveryMs: 0 }, telegram: { progressEditMs: 0 } });
    // Tiles of 32: the web job runs 20 of them, so its stream sees progress after it opens (one tile was over
    // before the stream could open on a quiet machine).
    const worker = role('worker', ['--role', 'worker'], { ENHANCER_TILE: '32' });
    await Promise.all([front.started(), worker.started(), front.count('discord bot ready', 1), front.count('Telegram bot polling', 1)]);

    // The web page: progress pushed while the worker runs the tiles, then the 4x PNG through the signed link.
    const base = `http://127.0.0.1:${webPort}`;
    const { body } = await upload(base, [{ name: 'web.png', bytes: await scenePng(160, 128, 1) }]);
    const { path: p, query } = splitLink(body.jobs![0].link!);
    const events = await (await fetch(`${base}${p}/events?${query}`)).text();
    expect(events).toMatch(/event: progress\ndata: \{"tilesDone":\d+,"tilesTotal":\d+/);
    expect(events).toMatch(/event: done\ndata: \{[^\n]*"state":"completed"/);
    const png = Buffer.from(await (await fetch(`${base}${p}/file/result?${query}`)).arrayBuffer());
    expect(await sharp(png).metadata()).toMatchObject({ format: 'png', width: 640, height: 512 });

    // Telegram: a photo in, its PNG 4x as a document in reply, the status message edited to Done.
    const photo = telegram.sendPhoto({ id: 7, first_name: 'Ann' }, await scenePng(96, 64, 2), { width: 96, height: 64 });
    const document = await telegram.waitFor((c) => c.method === 'sendDocument' && c.params.reply_parameters?.message_id === photo.message_id, 'the PNG in Telegram', 120_000);
    expect(await sharp(document.file('document').bytes).metadata()).toMatchObject({ format: 'png', width: 384, height: 256 });

    // Discord: /enhance with an image, answered in the interaction's reply with the PNG 4x.
    const interaction = discord.enhance(user('333333333333333333', 'carol'), discord.attachment(await scenePng(80, 80, 3), 'carol.png'));
    const isDone = (c: Call) => c.method === 'PATCH' && c.path === `/webhooks/${discord.application}/${interaction.token}/messages/@original` && /: done, /.test(c.body?.content ?? '');
    const done = await discord.waitFor(isDone, 'the result in Discord', 120_000);
    expect(await sharp(done.files[0].bytes).metadata()).toMatchObject({ format: 'png', width: 320, height: 320 });

    // Run by the worker, delivered by the front: each once.
    expect(worker.lines('job completed')).toHaveLength(3);
    await front.count('job delivered', 3);
    expect(front.lines('job completed')).toEqual([]);
  }, 240_000);
});
