/**
 * The Discord bot end to end: the real service in a child process with real models, the real discord.js client
 * inside it, talking to a fake Discord of our own (test/fake-discord.ts) on 127.0.0.1. Tests assert what a
 * person would see: the messages and files the bot sent, in order.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeDiscord, user, type Call } from './fake-discord.js';
import { scenePng, tempDir } from './helpers.js';
import { ServiceProcess, withConfig } from './service.js';

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
async function start(discord: object = {}, env: Record<string, string> = {}): Promise<ServiceProcess> {
  service = new ServiceProcess(dir, {
    ...withConfig(dir, { discord: { progressEveryMs: 0, ...discord } }),
    ENHANCER_HOTFOLDER: 'false',
    ENHANCER_TILE: '128',
    DISCORD_TOKEN: TOKEN,
    DISCORD_APPLICATION_ID: fake.application,
    DISCORD_API_ROOT: fake.apiRoot,
    DISCORD_GUILD_ID: fake.guild.id,
    ...env,
  });
  await service.started();
  return service;
}

const webhook = (interaction: { token: string }) => `/webhooks/${fake.application}/${interaction.token}`;
const isEdit = (interaction: { token: string }) => (c: Call) => c.method === 'PATCH' && c.path === `${webhook(interaction)}/messages/@original`;
const isFollowUp = (interaction: { token: string }) => (c: Call) => c.method === 'POST' && c.path === webhook(interaction);
const isDone = (c: Call) => /: done, /.test(c.body?.content ?? '');
const meta = (bytes: Buffer) => sharp(bytes).metadata();

describe('discord', () => {
  it('answers /enhance: deferred, progress with a relative ETA, the early preview, the PNG 4x, the comparison and the PDF', async () => {
    const s = await start();
    const register = await fake.waitFor((c) => c.method === 'PUT', 'command registration');
    expect(register.path).toBe(`/applications/${fake.application}/guilds/${fake.guild.id}/commands`);
    expect(register.body.map((c: { name: string }) => c.name)).toEqual(['enhance', 'queue', 'cancel', 'Enhance']);
    const model = register.body[0].options.find((o: { name: string }) => o.name === 'model');
    expect(model.choices.map((c: { value: string }) => c.value)).toEqual(['x4plus', 'x4fast']);
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
});
