/**
 * The Discord bot end to end: the real service in a child process with real models, the real discord.js client
 * inside it, talking to a fake Discord of our own (test/fake-discord.ts) on 127.0.0.1. Tests assert what a
 * person would see: the messages and files the bot sent, in order.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDiscord, snowflake, user, type Call } from './fake-discord.js';
import { drawingPng, scenePng, tempDir } from './helpers.js';
import { freePort } from './http.js';
import { ServiceProcess, withConfig } from './service.js';
import { followChatLink, splitLink } from './web-service.js';

const TOKEN = `MTIzNDU2Nzg5.bot-token.${'S3cr3t'.repeat(8)}`;
const alice = user('111111111111111111', 'alice');
const bob = user('222222222222222222', 'bob');

let dir: string;
let fake: FakeDiscord;
let service: ServiceProcess | undefined;

beforeEach(async () => {
  dir = tempDir('enhancer-discord-');
  fake = new FakeDiscord({ token: TOKEN });
  await fake.listen();
});
afterEach(async () => {
  await service?.stop('SIGKILL');
  service = undefined;
  await fake.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The service with the bot pointed at the fake; edits unthrottled so every progress step shows. */
async function start(discord: object = {}, env: Record<string, string> = {}, core: object = {}): Promise<ServiceProcess> {
  service = new ServiceProcess(dir, {
    ...withConfig(dir, { ...core, discord: { progressEveryMs: 0, ...discord } }),
    ENHANCER_HOTFOLDER: 'false',
    ENHANCER_TILE: '128',
    DISCORD_TOKEN: TOKEN,
    DISCORD_APPLICATION_ID: fake.application,
    DISCORD_API_ROOT: fake.apiRoot,
    DISCORD_GUILD_ID: fake.guild.id,
    ...env,
  });
  await service.started();
  await service.count('discord bot ready', 1);
  return service;
}

const webhook = (interaction: { token?: unknown }) => `/webhooks/${fake.application}/${interaction.token}`;
const isEdit = (interaction: { token?: unknown }) => (c: Call) => c.method === 'PATCH' && c.path === `${webhook(interaction)}/messages/@original`;
const isFollowUp = (interaction: { token?: unknown }) => (c: Call) => c.method === 'POST' && c.path === webhook(interaction);
const isDone = (c: Call) => /: done, /.test(c.body?.content ?? '');
const meta = (bytes: Buffer) => sharp(bytes).metadata();

describe('discord', () => {
  it('answers /enhance: deferred, progress with a relative ETA, the early preview, the PNG 4x, the comparison and the PDF', async () => {
    const s = await start();
    const register = await fake.waitFor((c) => c.method === 'PUT', 'command registration');
    expect(register.path).toBe(`/applications/${fake.application}/guilds/${fake.guild.id}/commands`);
    expect(register.body.map((c: { name: string }) => c.name)).toEqual(['enhance', 'queue', 'cancel', 'Enhance']);
    const model = register.body[0].options.find((o: { name: string }) => o.name === 'model');
    // Each with its Chinese name too (the language tests read those).
    expect(model.choices).toMatchObject([
      { name: 'x4plus (photos, best)', value: 'x4plus' },
      { name: 'x4fast (photos, quick)', value: 'x4fast' },
      { name: 'anime (drawings, anime, illustrations)', value: 'anime' },
      { name: 'anime-fast (drawings and anime, quick)', value: 'anime-fast' },
    ]);
    // No privileged intent: Guilds, GuildMessages, DirectMessages.
    expect(fake.identifies[0].intents).toBe(1 | 512 | 4096);
    expect(fake.identifies[0].compress ?? false).toBe(false);

    const image = fake.attachment(await scenePng(320, 320, 1), 'cat photo.png');
    const sentAt = Date.now();
    const interaction = fake.enhance(alice, image, { report: true });
    const callback = await fake.waitFor((c) => c.path === `/interactions/${interaction.id}/${interaction.token}/callback`, 'the deferral');
    expect(Date.now() - sentAt).toBeLessThan(3000);
    expect(callback.body.type).toBe(5);

    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result', 120_000);
    await fake.waitForCount(isFollowUp(interaction), 2, 'the preview and the extras');
    const edits = fake.calls.filter(isEdit(interaction));
    const progress = edits.filter((c) => /█|░/.test(c.body.content));
    expect(progress.length).toBeGreaterThan(1);
    for (const edit of progress) {
      expect(edit.body.content).toMatch(/^\*\*cat photo\.png\*\*: `[█░]{10}` \d+%, done <t:\d+:R>$/);
      expect(edit.body.components[0].components[0]).toMatchObject({ label: 'Cancel', custom_id: expect.stringMatching(/^cancel:/) });
    }
    expect(edits.at(-1)).toBe(final);
    expect(final.body.content).toMatch(/^\*\*cat photo\.png\*\*: done, 1280x1280 \(x4fast, 4x\) in [\d.]+ s$/);
    expect(final.body.components).toEqual([]);
    expect(final.files.map((f) => f.name)).toEqual(['cat_photo.png']);
    expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'png', width: 1280, height: 1280 });

    const [preview, extras] = fake.calls.filter(isFollowUp(interaction));
    expect(fake.calls.indexOf(preview)).toBeLessThan(fake.calls.indexOf(final));
    expect(preview.body.content).toBe('**cat photo.png**: early preview, a detail of the result at full size');
    expect((await meta(preview.files[0].bytes)).format).toBe('png');
    expect(extras.body.content).toBe('**cat photo.png**: before and after, the PDF summary');
    expect(extras.files.map((f) => f.name)).toEqual(['cat_photo.compare.jpg', 'cat_photo.report.pdf']);
    expect((await meta(extras.files[0].bytes)).format).toBe('jpeg');
    expect(extras.files[1].bytes.subarray(0, 5).toString()).toBe('%PDF-');
    await s.count('job delivered', 1);
  });

  it('offers the anime scene as /enhance models: anime at 2x and anime-fast at 3x, answered at those sizes', async () => {
    await start({}, { ENHANCER_TILE: 'auto' });
    const drawing = await drawingPng(24, 20);
    const slow = fake.enhance(alice, fake.attachment(drawing, 'lines.png'), { model: 'anime', scale: 2 });
    const fast = fake.enhance(alice, fake.attachment(drawing, 'lines fast.png'), { model: 'anime-fast', scale: 3 });
    for (const [interaction, text, width, height] of [
      [slow, /^\*\*lines\.png\*\*: done, 48x40 \(anime, 2x\) in [\d.]+ s$/, 48, 40],
      [fast, /^\*\*lines fast\.png\*\*: done, 72x60 \(anime-fast, 3x\) in [\d.]+ s$/, 72, 60],
    ] as const) {
      const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result');
      expect(final.body.content).toMatch(text);
      expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'png', width, height });
    }
  });

  it('enhances the image of a message through the Enhance app command, answered in that channel', async () => {
    await start();
    const target = fake.message({ author: bob, attachments: [fake.attachment(await scenePng(24, 20, 2), 'from bob.jpg', 'image/jpeg')] });
    const interaction = fake.interact({ person: alice, data: { id: snowflake(), name: 'Enhance', type: 3, target_id: target.id, resolved: { messages: { [target.id]: target } } } });
    const callback = await fake.waitFor((c) => c.path.startsWith(`/interactions/${interaction.id}/`), 'the deferral');
    expect(callback.body).toMatchObject({ type: 5 });
    expect(callback.body.data?.flags ?? 0).toBe(0);
    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result');
    expect(final.body.content).toMatch(/^\*\*from bob\.jpg\*\*: done, 96x80 /);
    expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'png', width: 96, height: 80 });
    expect(final.files[0].name).toBe('from_bob.png');
  });

  it('answers /enhance with format jpeg as a JPEG of the whole result', async () => {
    await start();
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(24, 20, 31), 'small.png'), { format: 'jpeg' });
    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result');
    expect(final.files.map((f: { name: string }) => f.name)).toEqual(['small.jpg']);
    expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'jpeg', width: 96, height: 80 });
  });

  it('enhances an image sent in a DM, answering with a reply it edits', async () => {
    await start();
    const dm = snowflake();
    const message = fake.sendMessage({ author: alice, channel: dm, guild: null, attachments: [fake.attachment(await scenePng(24, 20, 3), 'dm.png')] });
    const status = await fake.waitFor((c) => c.method === 'POST' && c.path === `/channels/${dm}/messages`, 'the status message');
    expect(status.body.content).toBe('**dm.png**: downloading…');
    expect(status.body.message_reference).toMatchObject({ message_id: message.id });
    const final = await fake.waitFor((c) => c.method === 'PATCH' && c.path.startsWith(`/channels/${dm}/messages/`) && isDone(c), 'the result');
    expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'png', width: 96, height: 80 });
    const compare = await fake.waitFor((c) => c.method === 'POST' && c.path === `/channels/${dm}/messages` && c.files.length > 0, 'the comparison');
    expect(compare.files.map((f) => f.name)).toEqual(['dm.compare.jpg']);
  });

  it('enhances an image attached to a message that mentions the bot, and ignores one that does not', async () => {
    await start();
    fake.sendMessage({ author: bob, attachments: [fake.attachment(await scenePng(24, 20, 4), 'ignored.png')] });
    const message = fake.sendMessage({ author: alice, content: `<@${fake.bot.id}> please`, mentions: [fake.bot], attachments: [fake.attachment(await scenePng(20, 24, 5), 'mention.png')] });
    const channel = fake.guild.channel;
    const final = await fake.waitFor((c) => c.method === 'PATCH' && c.path.startsWith(`/channels/${channel}/messages/`) && isDone(c), 'the result');
    expect(await meta(final.files[0].bytes)).toMatchObject({ width: 80, height: 96 });
    const statuses = fake.calls.filter((c) => c.method === 'POST' && c.path === `/channels/${channel}/messages` && c.files.length === 0);
    expect(statuses.map((c) => c.body.message_reference?.message_id)).toEqual([message.id]);
    expect(fake.calls.some((c) => JSON.stringify(c.body ?? {}).includes('ignored'))).toBe(false);
  });

  it('sends the most faithful file that fits when the result is over the upload limit, saying what and why', async () => {
    await start();
    // Noise does not compress: 64x64 of it passes the header check (a 4x PNG estimated at 118 kB) but the
    // real PNG is about 155 kB, over the 140 kB the interaction allows.
    const limit = 140_000;
    const image = fake.attachment(await noisePng(64, 64), 'noise.png');
    const interaction = fake.enhance(alice, image, { raw: true }, { attachmentSizeLimit: limit });
    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result');
    const [file] = final.files;
    expect(file.bytes.length).toBeLessThanOrEqual(limit);
    const sent = await meta(file.bytes);
    const [, note] = final.body.content.split('\n');
    // The whole 256x256: lossless WebP where it fits, else a JPEG of the full resolution; never fewer pixels.
    expect([sent.width, sent.height]).toEqual([256, 256]);
    if (sent.format === 'webp') {
      expect(note).toMatch(/^sent as lossless WebP \(\d+ KB, the same pixels\): the PNG is \d+ KB, over the 140 KB upload limit$/);
      expect(file.name).toBe('noise.webp');
    } else {
      expect(note).toMatch(/^sent as JPEG, quality \d+, full resolution \(\d+ KB\): the PNG is \d+ KB, over the 140 KB upload limit$/);
      expect(file.name).toBe('noise.jpg');
    }
  });

  it('with web.publicUrl answers a 1600x1200 photo with its whole 6400x4800 result under 10 MiB as JPEG and a link to the PNG, and every answer with a link', async () => {
    const port = await freePort();
    const publicUrl = `http://127.0.0.1:${port}`;
    await start({}, { ENHANCER_WEB_PORT: String(port), ENHANCER_PUBLIC_URL: publicUrl });
    const limit = 10 * 2 ** 20;
    const input = await sharp(await scenePng(1600, 1200, 43)).jpeg({ quality: 92 }).toBuffer();
    const interaction = fake.enhance(alice, fake.attachment(input, 'phone.jpg', 'image/jpeg'), {}, { attachmentSizeLimit: limit });
    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result', 540_000);
    const [line, note, onPage] = final.body.content.split('\n');
    expect(line).toMatch(/^\*\*phone\.jpg\*\*: done, 6400x4800 \(x4fast, 4x\) in [\d.]+ s$/);
    expect(note).toMatch(/^sent as JPEG, quality \d+, full resolution \([\d.]+ MB\): the PNG is [\d.]+ MB, over the 10\.5 MB upload limit$/);
    expect(onPage).toBe('the PNG is on the page');
    expect(final.files.map((f: { name: string }) => f.name)).toEqual(['phone.jpg']);
    expect(final.files[0].bytes.length).toBeLessThanOrEqual(limit);
    expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'jpeg', width: 6400, height: 4800 });
    const [row] = final.body.components;
    expect(row.components).toHaveLength(1);
    const [button] = row.components;
    expect(button).toMatchObject({ type: 2, style: 5, label: 'Open in the browser' });
    expect(button.url.startsWith(`${publicUrl}/job/`)).toBe(true);
    // The comparison follows, as with every answer.
    await fake.waitFor((c) => isFollowUp(interaction)(c) && /before and after/.test(c.body?.content ?? ''), 'the comparison');

    const { signature, png } = await followChatLink(publicUrl, button.url);
    expect(png.length).toBeGreaterThan(limit);
    expect(png.equals(fs.readFileSync(path.join(dir, 'data', 'cache', signature, 'result')))).toBe(true);
    expect(await meta(png)).toMatchObject({ format: 'png', width: 6400, height: 4800 });

    // An answer whose PNG fits is the usual one, with the link too.
    const small = fake.enhance(alice, fake.attachment(await scenePng(16, 16, 44), 'small.png'));
    const smallFinal = await fake.waitFor((c) => isEdit(small)(c) && isDone(c), 'the small result');
    expect(await meta(smallFinal.files[0].bytes)).toMatchObject({ format: 'png', width: 64, height: 64 });
    const smallUrl = smallFinal.body.components[0].components[0].url as string;
    const smallLink = splitLink(smallUrl.slice(publicUrl.length));
    const smallPng = Buffer.from(await (await fetch(`${publicUrl}${smallLink.path}/file/result?${smallLink.query}`)).arrayBuffer());
    expect(smallPng.equals(smallFinal.files[0].bytes)).toBe(true);
    // x4fast on 1.9 MP: about 40 s on a quiet 2-core machine, 3 min with other work beside it.
  }, 600_000);

  it('sends a smaller file when Discord refuses the first as too large, saying so', async () => {
    await start();
    fake.failOnce((c) => c.method === 'PATCH' && c.files.length > 0, 413, { message: 'Request entity too large', code: 40005 });
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(24, 20, 26), 'refused.png'));
    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c) && c.status === 200, 'the smaller result');
    const [first, second] = fake.calls.filter((c) => isEdit(interaction)(c) && c.files.length > 0);
    expect([first.status, second]).toEqual([413, final]);
    expect(second.files[0].bytes.length).toBeLessThanOrEqual(Math.floor(first.files[0].bytes.length * 0.75));
    expect(final.body.content.split('\n').at(-1)).toMatch(/^Discord refused a \d+ KB file here as too large, so a smaller one was sent$/);
  });

  it('gives a one-line reason for each bad input and keeps going', async () => {
    const s = await start({}, {}, { limits: { maxFileBytes: 100_000, maxPixels: 1_000_000 } });
    const reasons: Array<[string, Buffer, string, RegExp]> = [
      ['notes.txt', Buffer.from('not a picture at all'), 'text/plain', /^\*\*notes\.txt\*\*: not an image in a supported format \(PNG, JPEG, WebP, GIF, TIFF, AVIF\)$/],
      ['empty.png', Buffer.alloc(0), 'image/png', /^\*\*empty\.png\*\*: the file is empty \(0 bytes\)$/],
      ['cut.jpg', await truncatedJpeg(), 'image/jpeg', /^\*\*cut\.jpg\*\*: could not be enhanced: the file is damaged or incomplete: send it again, or export it anew$/],
      ['huge.png', await sharp({ create: { width: 1100, height: 1000, channels: 3, background: '#808080' } }).png().toBuffer(), 'image/png', /^\*\*huge\.png\*\*: the image is 1100x1000 .*over the limit/],
      ['big.png', Buffer.alloc(150_000, 1), 'image/png', /^\*\*big\.png\*\*: the file is .* over the limit of/],
    ];
    for (const [name, bytes, type, reason] of reasons) {
      const interaction = fake.enhance(alice, fake.attachment(bytes, name, type));
      // A header that reads well but data that does not (cut.jpg) is refused when the job runs, not before.
      const edit = await fake.waitFor((c) => isEdit(interaction)(c) && !/next in line|position|enhancing|█|░/.test(c.body.content), `the reason for ${name}`);
      expect(edit.body.content).toMatch(reason);
      expect(edit.body.content.split('\n')).toHaveLength(1);
    }
    // An attachment address that is not Discord's CDN is never fetched.
    const elsewhere = { ...fake.attachment(await scenePng(16, 16, 27), 'elsewhere.png'), url: 'http://192.0.2.1/elsewhere.png' };
    const far = fake.enhance(alice, elsewhere);
    expect((await fake.waitFor(isEdit(far), 'the address reason')).body.content).toBe("**elsewhere.png**: the attachment is not on Discord's CDN (http://192.0.2.1), so it is not downloaded");
    // An unknown model (choices are only a hint to Discord's client) is refused by the queue.
    const forged = fake.enhance(alice, fake.attachment(await scenePng(16, 16, 7), 'forged.png'), { model: 'x9magic' });
    expect((await fake.waitFor(isEdit(forged), 'the model reason')).body.content).toMatch(/^\*\*forged\.png\*\*: unknown model "x9magic"/);
    // The Enhance command on a message without an image.
    const target = fake.message({ author: bob, content: 'just words' });
    const app = fake.interact({ person: alice, data: { id: snowflake(), name: 'Enhance', type: 3, target_id: target.id, resolved: { messages: { [target.id]: target } } } });
    expect((await fake.waitFor(isEdit(app), 'the no-image reason')).body.content).toBe('That message has no image attached: Enhance works on a message with an image file.');
    // A DM without an image.
    const dm = snowflake();
    fake.sendMessage({ author: alice, channel: dm, guild: null, content: 'hello' });
    const hint = await fake.waitFor((c) => c.path === `/channels/${dm}/messages`, 'the DM hint');
    expect(hint.body.content).toMatch(/^Send an image as an attachment/);
    // Still running: the next good image is enhanced.
    const good = fake.enhance(alice, fake.attachment(await scenePng(16, 16, 8), 'good.png'));
    await fake.waitFor((c) => isEdit(good)(c) && isDone(c), 'the good image');
    expect(s.running).toBe(true);
  });

  it('offers the scales that fit only when not even a JPEG of the 4x result would fit the upload limit, and runs the one pressed', async () => {
    await start();
    // 64x64 by the header estimate, as JPEG of quality 70 (the lowest sent): about 6.6 kB at 4x, over 5 kB; at
    // 3x about 3.7 kB, which fits.
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(64, 64, 16), 'wide.png'), {}, { attachmentSizeLimit: 5_000 });
    const offer = await fake.waitFor(isEdit(interaction), 'the offer');
    expect(offer.body.content).toBe('**wide.png**: the 4x result of this 64x64 image would be over the 5 KB upload limit here, even as JPEG; 3x fits:');
    const buttons = offer.body.components[0].components;
    expect(buttons.map((b: { label: string }) => b.label)).toEqual(['3x', '2x']);
    const message = { ...fake.message({ author: fake.bot, content: offer.body.content }), components: offer.body.components };
    const press = fake.interact({ person: alice, type: 3, message, data: { custom_id: buttons[0].custom_id, component_type: 2 } });
    const update = await fake.waitFor((c) => c.path.startsWith(`/interactions/${press.id}/`), 'the press answer');
    expect(update.body).toMatchObject({ type: 7, data: { content: '**wide.png**: 3x, queued', components: [] } });
    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result');
    expect(final.body.content).toMatch(/^\*\*wide\.png\*\*: done, 192x192 \(x4fast, 3x\)/);
    expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'jpeg', width: 192, height: 192 });
    expect(final.files[0].bytes.length).toBeLessThanOrEqual(5_000);
  });

  it('asks before a job over limits.confirmOver, and runs the model pressed: its own or the faster one', async () => {
    // Over 1 s is long here: an x4plus job asks first.
    await start({}, { ENHANCER_CONFIRM_OVER: '1' });
    const cat = fs.readFileSync(path.join(import.meta.dirname, '..', 'models', 'calibration', 'chelsea.png'));
    const interaction = fake.enhance(alice, fake.attachment(cat, 'cat.png'), { model: 'x4plus' });
    const ask = await fake.waitFor(isEdit(interaction), 'the question');
    expect(ask.body.content).toMatch(/^\*\*cat\.png\*\*: with x4plus this image would take about .+ on this machine\. Run it\?$/);
    const buttons = ask.body.components[0].components;
    expect(buttons.map((b: { label: string }) => b.label)).toEqual([expect.stringMatching(/^x4plus \(about .+\)$/), expect.stringMatching(/^x4fast \(about .+\)$/)]);
    const message = { ...fake.message({ author: fake.bot, content: ask.body.content }), components: ask.body.components };
    const press = fake.interact({ person: alice, type: 3, message, data: { custom_id: buttons[1].custom_id, component_type: 2 } });
    const update = await fake.waitFor((c) => c.path.startsWith(`/interactions/${press.id}/`), 'the press answer');
    expect(update.body).toMatchObject({ type: 7, data: { content: '**cat.png**: x4fast, queued', components: [] } });
    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result');
    expect(final.body.content).toMatch(/^\*\*cat\.png\*\*: done, 512x512 \(x4fast, 4x\)/);
  });

  it('lists a person\'s jobs with /queue, holds them to their queued-job limit and cancels them with /cancel', async () => {
    await start({}, { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' }, { limits: { queuedPerOwner: 1 } });
    const slow = fake.enhance(alice, fake.attachment(await scenePng(96, 96, 17), 'slow.png'));
    await fake.waitFor((c) => isEdit(slow)(c) && /enhancing|█/.test(c.body.content), 'the job to start');
    const second = fake.enhance(alice, fake.attachment(await scenePng(16, 16, 18), 'second.png'));
    const refused = await fake.waitFor(isEdit(second), 'the limit reason');
    expect(refused.body.content).toMatch(/^\*\*second\.png\*\*: [^\n]+$/);
    expect(refused.body.content).not.toMatch(/internal error/);

    const queue = fake.command(alice, 'queue');
    const listed = await fake.waitFor((c) => c.path.startsWith(`/interactions/${queue.id}/`), 'the /queue answer');
    expect(listed.body.type).toBe(4);
    expect(listed.body.data.flags).toBe(64);
    expect(listed.body.data.content).toMatch(/^\*\*slow\.png\*\*: (starting|`[█░]{10}` \d+%), done <t:\d+:R>$/);
    const other = fake.command(bob, 'queue');
    expect((await fake.waitFor((c) => c.path.startsWith(`/interactions/${other.id}/`), 'bob\'s /queue')).body.data.content).toBe('You have no images waiting or being enhanced.');

    const cancel = fake.command(alice, 'cancel');
    const done = await fake.waitFor((c) => c.path.startsWith(`/interactions/${cancel.id}/`), 'the /cancel answer');
    expect(done.body.data.content).toBe('Cancelled: slow.png');
    const cancelled = await fake.waitFor((c) => isEdit(slow)(c) && /cancelled/.test(c.body.content), 'the cancelled answer');
    expect(cancelled.body.content).toMatch(/^\*\*slow\.png\*\*: cancelled/);
  });

  it('answers only the servers, channels and people on its allowlists', async () => {
    await start({ allowedUsers: [alice.id], allowedChannels: [fake.guild.channel] });
    const stranger = fake.enhance(bob, fake.attachment(await scenePng(16, 16, 19), 'bob.png'));
    const refused = await fake.waitFor((c) => c.path.startsWith(`/interactions/${stranger.id}/`), 'the refusal');
    expect(refused.body).toMatchObject({ type: 4, data: { content: 'This bot does not answer here.', flags: 64 } });
    // Alice in a DM: not an allowed channel.
    const dm = snowflake();
    fake.sendMessage({ author: alice, channel: dm, guild: null, attachments: [fake.attachment(await scenePng(16, 16, 20), 'dm.png')] });
    const no = await fake.waitFor((c) => c.path === `/channels/${dm}/messages`, 'the DM refusal');
    expect(no.body.content).toBe('This bot does not answer here.');
    // Alice in the allowed channel.
    const allowed = fake.enhance(alice, fake.attachment(await scenePng(16, 16, 21), 'alice.png'));
    await fake.waitFor((c) => isEdit(allowed)(c) && isDone(c), 'the result');
    expect(fake.calls.some((c) => c.files.some((f) => f.name.startsWith('bob') || f.name.startsWith('dm')))).toBe(false);
  });

  it('edits the progress no more often than progressEveryMs', async () => {
    await start({ progressEveryMs: 1500 }, { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' });
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(96, 96, 22), 'paced.png'));
    await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result', 120_000);
    const bars = fake.calls.filter((c) => isEdit(interaction)(c) && /█|░/.test(c.body.content));
    expect(bars.length).toBeGreaterThanOrEqual(1);
    // Nine tiles, each reported; edits are spaced by the setting (less a little for the way there).
    for (let i = 1; i < bars.length; i++) expect(bars[i].at - bars[i - 1].at).toBeGreaterThanOrEqual(1300);
  });

  it('retries an upload answered with 429 and delivers once', async () => {
    await start();
    fake.rateLimitOnce((c) => c.method === 'PATCH' && c.files.length > 0);
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(24, 20, 9), 'limited.png'));
    const final = await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c) && c.status === 200, 'the result after the 429');
    const uploads = fake.calls.filter((c) => isEdit(interaction)(c) && c.files.length > 0);
    expect(uploads.map((c) => c.status)).toEqual([429, 200]);
    expect(uploads[1]).toBe(final);
    expect(await meta(final.files[0].bytes)).toMatchObject({ width: 96, height: 80 });
  });

  it('cancels a running job from its Cancel button, for its owner only', async () => {
    const s = await start({}, { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' });
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(96, 96, 10), 'slow.png'));
    const running = await fake.waitFor((c) => isEdit(interaction)(c) && /█|░/.test(c.body.content), 'a progress edit');
    const button = running.body.components[0].components[0];
    const message = { ...fake.message({ author: fake.bot, content: running.body.content }), components: running.body.components };
    const press = (person: typeof alice) => fake.interact({ person, type: 3, message, data: { custom_id: button.custom_id, component_type: 2 } });
    const stranger = press(bob);
    const refused = await fake.waitFor(isFollowUp(stranger), 'the refusal');
    expect(refused.body).toMatchObject({ flags: 64, content: 'only the person who sent an image can cancel it' });
    const owner = press(alice);
    expect((await fake.waitFor((c) => c.path.startsWith(`/interactions/${owner.id}/`), 'the press ack')).body.type).toBe(6);
    const cancelled = await fake.waitFor((c) => isEdit(interaction)(c) && /cancelled/.test(c.body.content), 'the cancelled answer');
    expect(cancelled.body.content).toMatch(/^\*\*slow\.png\*\*: cancelled/);
    expect(cancelled.body.components).toEqual([]);
    await s.count('job delivered', 1);
  });

  it('moves to an ordinary channel message when the interaction token has run out', async () => {
    await start({ interactionLifetimeMs: 1 });
    const channel = fake.guild.channel;
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(24, 20, 11), 'late.png'));
    await fake.waitFor((c) => c.path.startsWith(`/interactions/${interaction.id}/`), 'the deferral');
    const final = await fake.waitFor((c) => c.method === 'PATCH' && c.path.startsWith(`/channels/${channel}/messages/`) && isDone(c), 'the result by channel message');
    expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'png', width: 96, height: 80 });
    const posted = fake.calls.filter((c) => c.method === 'POST' && c.path === `/channels/${channel}/messages`);
    expect(posted[0].body.content).toMatch(/^\*\*late\.png\*\*: /);
    // A reply to the interaction's own message, whose id the job kept.
    expect(posted[0].body.message_reference).toMatchObject({ message_id: fake.originals.get(interaction.token) });
    expect(final.path).toBe(`/channels/${channel}/messages/${posted[0].response.id}`);
    // No answer went through the expired token.
    expect(fake.calls.some((c) => isEdit(interaction)(c) && isDone(c))).toBe(false);
  });

  it('answers a job accepted before a restart after it, once, in the language it was asked in', async () => {
    let s = await start({}, { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' });
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(96, 96, 12), 'restart.png'), {}, { locale: 'zh-CN' });
    await s.count('job started', 1);
    await s.until((logs) => logs.some((l) => l.msg === 'model loaded'), 'the model to load');
    await s.stop('SIGKILL');
    const isDoneZh = (c: Call) => isEdit(interaction)(c) && /：完成，/.test(c.body?.content ?? '');
    expect(fake.calls.some(isDoneZh)).toBe(false);
    s = await start({}, { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' });
    expect(s.lines('service started')[0].recovered).toBe(1);
    // Said in the language stored with the job (request.locale), which the new process reads back with it.
    const final = await fake.waitFor(isDoneZh, 'the result after the restart', 120_000);
    expect(final.body.content).toMatch(/^\*\*restart\.png\*\*：完成，384x384（x4plus，4 倍），用时 [\d.]+ 秒$/);
    expect(await meta(final.files[0].bytes)).toMatchObject({ width: 384, height: 384 });
    await s.count('job delivered', 1);
    expect(fake.calls.filter(isDoneZh)).toHaveLength(1);
    // Registered at both starts, the same list: a bulk overwrite, idempotent.
    const puts = fake.calls.filter((c) => c.method === 'PUT');
    expect(puts).toHaveLength(2);
    expect(puts[1].body).toEqual(puts[0].body);
  });

  it('answers in a DM when the channel cannot be written to any more', async () => {
    await start({ interactionLifetimeMs: 1 });
    fake.goneChannels.add(fake.guild.channel);
    fake.enhance(alice, fake.attachment(await scenePng(24, 20, 23), 'elsewhere.png'));
    const dm = `dm${alice.id}`;
    const final = await fake.waitFor((c) => c.method === 'PATCH' && c.path.startsWith(`/channels/${dm}/messages/`) && isDone(c), 'the result in a DM');
    expect(await meta(final.files[0].bytes)).toMatchObject({ width: 96, height: 80 });
    expect(fake.calls.some((c) => c.method === 'POST' && c.path === '/users/@me/channels' && c.body.recipient_id === alice.id)).toBe(true);
  });

  it('keeps answering after the gateway connection drops (resumed by discord.js)', async () => {
    await start();
    fake.dropGateway();
    await new Promise<void>((resolve, reject) => {
      const deadline = Date.now() + 60_000;
      const check = () => (fake.resumes.length + fake.identifies.length > 1 && fake.connected > 0 ? resolve() : Date.now() > deadline ? reject(new Error('no reconnect')) : setTimeout(check, 50));
      check();
    });
    expect([fake.identifies.length, fake.resumes.length]).toEqual([1, 1]);
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(24, 20, 24), 'after.png'));
    await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result after the reconnect');
  });

  it('starts while Discord cannot be reached and connects once it can', async () => {
    // A port nothing listens on yet: the fake opens it later.
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const port = (probe.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    await fake.close();
    fake = new FakeDiscord({ token: TOKEN });
    service = new ServiceProcess(dir, {
      ...withConfig(dir, { discord: { progressEveryMs: 0 } }),
      ENHANCER_HOTFOLDER: 'false',
      // Neither an application nor a server: the id comes from READY and the commands are global.
      DISCORD_TOKEN: TOKEN,
      DISCORD_API_ROOT: `http://127.0.0.1:${port}/api`,
    });
    await service.started();
    expect(service.lines('cannot reach Discord; trying again in the background').length).toBeGreaterThanOrEqual(1);
    await fake.listen(port);
    await service.count('discord bot ready', 1);
    expect(fake.calls.filter((c) => c.method === 'PUT').map((c) => c.path)).toEqual([`/applications/${fake.application}/commands`]);
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(24, 20, 25), 'late.png'));
    await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c), 'the result');
  });

  it('stops with one line when Discord refuses the token, without showing it', async () => {
    const wrong = `MTIz.wrong-token.${'W'.repeat(30)}`;
    service = new ServiceProcess(dir, { ENHANCER_HOTFOLDER: 'false', DISCORD_TOKEN: wrong, DISCORD_API_ROOT: fake.apiRoot });
    expect((await service.exited).code).toBe(1);
    await service.closed;
    const said = service.stderr.join('\n');
    expect(said).toMatch(/^error: Discord refused the bot token: check DISCORD_TOKEN/m);
    expect(said + JSON.stringify(service.logs)).not.toContain(wrong);
  });

  it('closes a job whose channel is gone and whose person closed their DMs, logged once', async () => {
    const s = await start({ interactionLifetimeMs: 1 });
    fake.goneChannels.add(fake.guild.channel);
    fake.closedDms.add(alice.id);
    fake.enhance(alice, fake.attachment(await scenePng(16, 16, 13), 'nowhere.png'));
    const given = 'delivery given up (permanent failure): the job is closed undelivered';
    await s.count(given, 1);
    expect(s.lines(given)).toHaveLength(1);
    expect(s.lines(given)[0].reason).toMatch(/^neither the channel nor a DM can be written to: Discord 403 \(50007\)/);
    // The next job still runs and is answered.
    fake.goneChannels.clear();
    fake.closedDms.clear();
    fake.enhance(alice, fake.attachment(await scenePng(16, 16, 15), 'next.png'));
    await fake.waitFor((c) => c.method === 'PATCH' && c.path.startsWith(`/channels/${fake.guild.channel}/messages/`) && isDone(c), 'the next result');
  });

  it('never lets the bot token or an interaction token reach the log or the data folder', async () => {
    const s = await start({}, { LOG_LEVEL: 'debug' });
    // A failing upload: discord.js's error holds the request's address, which holds the interaction token.
    fake.failOnce((c) => c.method === 'PATCH' && c.files.length > 0, 400, { message: 'Invalid Form Body', code: 50035 });
    const interaction = fake.enhance(alice, fake.attachment(await scenePng(24, 20, 14), 'secret.png'));
    await fake.waitFor((c) => isEdit(interaction)(c) && isDone(c) && c.status === 200, 'the result, tried again');
    expect(s.lines('delivery failed; trying again later')[0].reason).toBe('internal error: Discord 400 (50035): Invalid Form Body');
    await s.count('job delivered', 1);
    await s.stop('SIGTERM');
    const logged = JSON.stringify(s.logs) + s.stderr.join('\n');
    expect(logged).not.toContain(TOKEN);
    expect(logged).not.toContain(interaction.token);
    for (const file of walk(path.join(dir, 'data'))) {
      const text = fs.readFileSync(file).toString('latin1');
      expect(text.includes(TOKEN), file).toBe(false);
      expect(text.includes(interaction.token), file).toBe(false);
    }
  });
});

describe('discord in the person\'s language', () => {
  const carol = user('333333333333333333', 'carol');
  const dave = user('444444444444444444', 'dave');
  const erin = user('555555555555555555', 'erin');
  const isDoneZh = (c: Call) => /：完成，/.test(c.body?.content ?? '');

  it('answers a zh-CN interaction in Chinese and an en-US one in English, a message in its sender\'s last language (also after a restart), else the server\'s', async () => {
    // A server whose preferred language is Chinese: what a message from someone never heard from is answered in.
    await fake.close();
    fake = new FakeDiscord({ token: TOKEN, guild: { id: snowflake(), channel: snowflake(), preferredLocale: 'zh-CN' } });
    await fake.listen();
    let s = await start();
    const register = await fake.waitFor((c) => c.method === 'PUT', 'command registration');
    const [enhance, queue, cancel, app] = register.body;
    expect([enhance, queue, cancel, app].map((c: { name: string; name_localizations: Record<string, string> }) => [c.name, c.name_localizations['zh-CN']])).toEqual([
      ['enhance', '增强'],
      ['queue', '队列'],
      ['cancel', '取消'],
      ['Enhance', '增强图片'],
    ]);
    expect(enhance.description_localizations['zh-CN']).toBe('用 RealESRGAN 把图片放大 4 倍');
    expect(enhance.options.map((o: { name_localizations: Record<string, string> }) => o.name_localizations['zh-CN'])).toEqual(['图片', '模型', '倍数', '格式', '原始输出', '精度', '报告']);
    expect(enhance.options[1].choices[1]).toMatchObject({ name: 'x4fast (photos, quick)', name_localizations: { 'zh-CN': 'x4fast（照片，速度快）' }, value: 'x4fast' });

    // zh-CN: queued, started and done in Chinese, the Cancel button too, and the extras' line.
    const zh = fake.enhance(carol, fake.attachment(await scenePng(24, 20, 30), '小猫.png'), {}, { locale: 'zh-CN' });
    const final = await fake.waitFor((c) => isEdit(zh)(c) && isDoneZh(c), 'the Chinese result');
    expect(final.body.content).toMatch(/^\*\*小猫\.png\*\*：完成，96x80（x4fast，4 倍），用时 [\d.]+ 秒$/);
    expect(await meta(final.files[0].bytes)).toMatchObject({ format: 'png', width: 96, height: 80 });
    const statuses = fake.calls.filter((c) => isEdit(zh)(c) && c !== final).map((c) => c.body);
    expect(statuses[0].content).toMatch(/^\*\*小猫\.png\*\*：下一个就轮到你，预计 <t:\d+:R> 完成$/);
    expect(statuses.map((b) => b.content)).toContain('**小猫.png**：正在增强（x4fast，4 倍）…');
    for (const body of statuses) expect(body.components[0].components[0].label).toBe('取消');
    const extras = await fake.waitFor((c) => isFollowUp(zh)(c) && c.files.some((f) => f.name.endsWith('.compare.jpg')), 'the Chinese extras');
    expect(extras.body.content).toBe('**小猫.png**：前后对比');

    // zh-CN bad input: the core's reason and the door's own, in Chinese.
    const empty = fake.enhance(carol, fake.attachment(Buffer.alloc(0), 'empty.png'), {}, { locale: 'zh-CN' });
    expect((await fake.waitFor(isEdit(empty), 'the Chinese empty-file reason')).body.content).toBe('**empty.png**：文件是空的（0 字节）');
    const far = fake.enhance(carol, { ...fake.attachment(await scenePng(16, 16, 31), 'far.png'), url: 'http://192.0.2.1/far.png' }, {}, { locale: 'zh-CN' });
    expect((await fake.waitFor(isEdit(far), 'the Chinese address reason')).body.content).toBe('**far.png**：附件不在 Discord 的 CDN 上（http://192.0.2.1），因此不会下载');

    // en-US in the same Chinese server: English, as today.
    const en = fake.enhance(dave, fake.attachment(await scenePng(24, 20, 32), 'dave.png'), {}, { locale: 'en-US' });
    const english = await fake.waitFor((c) => isEdit(en)(c) && isDone(c), 'the English result');
    expect(english.body.content).toMatch(/^\*\*dave\.png\*\*: done, 96x80 \(x4fast, 4x\) in [\d.]+ s$/);
    expect(fake.calls.filter(isEdit(en))[0].body.content).toMatch(/^\*\*dave\.png\*\*: next in line, done <t:\d+:R>$/);

    // Carol's DM (no server to go by): her last interaction's language.
    const dm = snowflake();
    fake.sendMessage({ author: carol, channel: dm, guild: null, attachments: [fake.attachment(await scenePng(24, 20, 33), 'dm.png')] });
    const downloading = await fake.waitFor((c) => c.method === 'POST' && c.path === `/channels/${dm}/messages`, 'the Chinese status message');
    expect(downloading.body.content).toBe('**dm.png**：正在下载…');
    const dmFinal = await fake.waitFor((c) => c.method === 'PATCH' && c.path.startsWith(`/channels/${dm}/messages/`) && isDoneZh(c), 'the Chinese DM result');
    expect(dmFinal.body.content).toMatch(/^\*\*dm\.png\*\*：完成，96x80（x4fast，4 倍），用时 [\d.]+ 秒$/);

    // Mentions without an image: Dave's own English beats the server's Chinese; Erin, never heard from, gets the server's.
    const hint = async (person: typeof alice) => {
      const message = fake.sendMessage({ author: person, content: `<@${fake.bot.id}> hi`, mentions: [fake.bot] });
      return (await fake.waitFor((c) => c.method === 'POST' && c.body?.message_reference?.message_id === message.id, `the hint to ${person.username}`)).body.content;
    };
    expect(await hint(dave)).toBe('Send an image as an attachment (PNG, JPEG, WebP, GIF, TIFF or AVIF) and I will enhance it 4x.');
    expect(await hint(erin)).toBe('请以附件形式发送一张图片（PNG、JPEG、WebP、GIF、TIFF 或 AVIF），我会把它放大 4 倍。');

    // After a restart, Carol's language is still known for her messages.
    await s.stop('SIGTERM');
    s = await start();
    const again = fake.sendMessage({ author: carol, channel: dm, guild: null, content: 'hello' });
    const after = await fake.waitFor((c) => c.method === 'POST' && c.body?.message_reference?.message_id === again.id, 'the hint after the restart');
    expect(after.body.content).toBe('请以附件形式发送一张图片（PNG、JPEG、WebP、GIF、TIFF 或 AVIF），我会把它放大 4 倍。');
  });
});

/** Every file under `root`. */
function walk(root: string): string[] {
  if (!fs.existsSync(root)) return [];
  return fs.readdirSync(root, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(root, entry.name);
    return entry.isDirectory() ? walk(file) : [file];
  });
}

/** The first half of a JPEG: its header reads, its data ends early. */
async function truncatedJpeg(): Promise<Buffer> {
  const jpeg = await sharp(await scenePng(64, 64, 6)).jpeg().toBuffer();
  return jpeg.subarray(0, jpeg.length >> 1);
}

/** Noise from a fixed seed: it does not compress, so its PNG is larger than the header estimate says. */
async function noisePng(width: number, height: number): Promise<Buffer> {
  const raw = Buffer.alloc(width * height * 3);
  let seed = 12345;
  for (let i = 0; i < raw.length; i++) {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    raw[i] = seed >> 16;
  }
  return sharp(raw, { raw: { width, height, channels: 3 } }).png().toBuffer();
}
