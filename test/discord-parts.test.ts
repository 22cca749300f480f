/**
 * The Discord adapter's small parts, without Discord: its config section, upload limits, the words it writes,
 * and how it keeps interaction tokens sealed and out of the log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DiscordAPIError } from 'discord.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { commandList } from '../adapters/discord/commands.js';
import { discordSection } from '../adapters/discord/config.js';
import { uploadLimit } from '../adapters/discord/limits.js';
import { KnownLocales } from '../adapters/discord/locales.js';
import { Secrets } from '../adapters/discord/secrets.js';
import { percentBar, relativeTime, safeName, uploadName } from '../adapters/discord/text.js';
import { ConfigError, loadConfig } from '../src/config.js';
import { CATALOGUE_DIR, loadLanguages } from '../src/i18n/i18n.js';
import { createLogger } from '../src/log.js';
import { tempDir } from './helpers.js';

let root: string;
beforeEach(() => {
  root = tempDir('enhancer-discord-config-');
  fs.mkdirSync(path.join(root, 'config'));
});
afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

const load = (env: NodeJS.ProcessEnv) => loadConfig({ env, root, sections: [discordSection] }).sections.discord;

describe('discord config', () => {
  it('is off without a token and reads its variables, lists as comma-separated ids', () => {
    expect(load({}).token).toBe('');
    const config = load({
      DISCORD_TOKEN: 'abc.def.ghi',
      DISCORD_APPLICATION_ID: '123',
      DISCORD_API_ROOT: 'http://127.0.0.1:9/api',
      DISCORD_GUILD_ID: '456',
      DISCORD_ALLOWED_USERS: '1, 2,3',
    });
    expect(config).toMatchObject({ token: 'abc.def.ghi', applicationId: '123', apiRoot: 'http://127.0.0.1:9/api', guildId: '456', allowedUsers: ['1', '2', '3'], allowedGuilds: [], uploadLimitBytes: 10 * 2 ** 20 });
  });

  it('names the variable of a bad value and never shows the token', () => {
    expect(() => load({ DISCORD_ALLOWED_GUILDS: 'abc' })).toThrow(ConfigError);
    expect(() => load({ DISCORD_ALLOWED_GUILDS: 'abc' })).toThrow(/discord\.allowedGuilds.*DISCORD_ALLOWED_GUILDS/);
    expect(() => load({ DISCORD_API_ROOT: 'ftp://x' })).toThrow(/discord\.apiRoot must be an http:\/\/ or https:\/\/ address/);
    fs.writeFileSync(path.join(root, 'config', 'enhancer.json'), JSON.stringify({ discord: { token: 42 } }));
    expect(() => load({})).toThrow(/discord\.token/);
  });
});

describe('discord upload limits', () => {
  it('takes the interaction\'s limit, else the server\'s boost tier, else the fallback', () => {
    expect(uploadLimit({ interaction: 26_214_400, premiumTier: 3 }, 10)).toBe(26_214_400);
    expect(uploadLimit({ premiumTier: 0 }, 5)).toBe(10 * 2 ** 20);
    expect(uploadLimit({ premiumTier: 2 }, 5)).toBe(50 * 2 ** 20);
    expect(uploadLimit({ premiumTier: 3 }, 5)).toBe(100 * 2 ** 20);
    expect(uploadLimit({ interaction: null, premiumTier: null }, 1234)).toBe(1234);
  });
});

describe('discord words', () => {
  it('writes a bar, a relative time and names that are neither Markdown nor paths', () => {
    expect(percentBar(3, 10)).toBe('`███░░░░░░░` 30%');
    expect(percentBar(0, 0)).toBe('`░░░░░░░░░░` 0%');
    expect(relativeTime(90_000, 1_000_000)).toBe('<t:1090:R>');
    expect(uploadName('../../etc/cat photo.jpg', 'png')).toBe('cat_photo.png');
    expect(uploadName('..', 'png', '.compare')).toBe('image.compare.png');
    expect(safeName('**bold** <@123>\nname.png')).toBe('bold 123 name.png');
  });
});

describe('discord secrets', () => {
  it('seals an interaction token under the bot token, and scrubs tokens from reasons', () => {
    const secrets = new Secrets('bot-token-1');
    const sealed = secrets.seal('interaction-token-abc');
    expect(sealed).not.toContain('interaction-token-abc');
    expect(secrets.open(sealed)).toBe('interaction-token-abc');
    expect(new Secrets('bot-token-2').open(sealed)).toBeUndefined();
    const error = new DiscordAPIError({ message: 'Unknown Webhook', code: 10015 }, 10015, 404, 'PATCH', 'https://discord.com/api/v10/webhooks/1/interaction-token-abc/messages/@original', { body: undefined, files: undefined });
    expect(secrets.reason(error)).toBe('Discord 404 (10015): Unknown Webhook');
    expect(secrets.scrub('failed: /webhooks/1/other-token/messages and bot-token-1')).toBe('failed: /webhooks/1/[token]/messages and [token]');
  });

  it('forgets interaction tokens an hour after it last saw them, never the bot token (one was kept per job)', () => {
    let now = 0;
    const secrets = new Secrets('bot-token-1', () => now);
    for (let i = 0; i < 1000; i++) {
      secrets.seal(`interaction-token-${i}`);
      now += 60_000;
    }
    // 1000 jobs a minute apart: only those of the last hour are still scrubbed by name.
    expect(secrets.remembered).toBe(60);
    expect(secrets.scrub('interaction-token-999 and bot-token-1')).toBe('[token] and [token]');
    expect(secrets.scrub('interaction-token-1 was')).toBe('interaction-token-1 was');
  });
});

describe('discord commands in each language', () => {
  type Named = { name: string; name_localizations?: Record<string, string>; description_localizations?: Record<string, string>; options?: Named[]; choices?: Named[] };
  const { commands, problems } = commandList(['x4plus', 'x4fast', 'mine']);
  const [enhance, queue, cancel, message] = commands as unknown as Named[];

  it('carries the Chinese catalogue as zh-CN (and zh-TW, until there is a zh-Hant) and English as the default', () => {
    expect(problems).toEqual([]);
    expect([enhance, queue, cancel, message].map((c) => [c.name, c.name_localizations])).toEqual([
      ['enhance', { 'zh-CN': '增强', 'zh-TW': '增强' }],
      ['queue', { 'zh-CN': '队列', 'zh-TW': '队列' }],
      ['cancel', { 'zh-CN': '取消', 'zh-TW': '取消' }],
      ['Enhance', { 'zh-CN': '增强图片', 'zh-TW': '增强图片' }],
    ]);
    expect(enhance.description_localizations).toEqual({ 'zh-CN': '用 RealESRGAN 把图片放大 4 倍', 'zh-TW': '用 RealESRGAN 把图片放大 4 倍' });
    expect(enhance.options!.map((o) => o.name_localizations!['zh-CN'])).toEqual(['图片', '模型', '倍数', '格式', '原始输出', '精度', '报告']);
    const [, model, scale] = enhance.options!;
    // A model the catalogue has no use for (a person's own) shows its bare name in every language.
    expect(model.choices!.map((c) => [c.name, c.name_localizations?.['zh-CN']])).toEqual([
      ['x4plus (photos, best)', 'x4plus（照片，效果最好）'],
      ['x4fast (photos, quick)', 'x4fast（照片，速度快）'],
      ['mine', undefined],
    ]);
    expect(scale.choices!.map((c) => [c.name, c.name_localizations?.['zh-CN']])).toEqual([['2x', '2 倍'], ['3x', '3 倍'], ['4x', '4 倍']]);
  });

  it('names only Discord locales that have a catalogue other than English', () => {
    const tags = new Set<string>();
    const walk = (items: Named[]) => {
      for (const item of items) {
        for (const tag of Object.keys({ ...item.name_localizations, ...item.description_localizations })) tags.add(tag);
        walk([...(item.options ?? []), ...(item.choices ?? [])]);
      }
    };
    walk(commands as unknown as Named[]);
    expect([...tags].sort()).toEqual(['zh-CN', 'zh-TW']);
  });

  it('takes a new language from its catalogue file alone, leaving out a name Discord would refuse', () => {
    fs.copyFileSync(path.join(CATALOGUE_DIR, 'en.json'), path.join(root, 'en.json'));
    const french = { discord: { commands: { enhance: { name: 'améliorer', description: 'Agrandir une image 4x avec RealESRGAN' }, queue: { name: 'File' } } } };
    fs.writeFileSync(path.join(root, 'fr.json'), JSON.stringify(french));
    const list = commandList(['x4fast'], loadLanguages(root));
    const [enhanceFr, queueFr] = list.commands as unknown as Named[];
    expect([enhanceFr.name, enhanceFr.name_localizations, enhanceFr.description_localizations]).toEqual(['enhance', { fr: 'améliorer' }, { fr: 'Agrandir une image 4x avec RealESRGAN' }]);
    // 'File' has a capital letter: Discord would refuse the whole list, so only that word is left out, and said why.
    expect([queueFr.name, queueFr.name_localizations]).toEqual(['queue', undefined]);
    expect(list.problems).toEqual(['fr.json discord.commands.queue.name: "File" is not used for fr: a command or option name is 1-32 lower-case letters, digits, - or _, no spaces']);
  });

  it('keeps slash command and option names within Discord\'s rules in every language', () => {
    const names = [enhance, queue, cancel, ...enhance.options!].flatMap((c) => [c.name, ...Object.values(c.name_localizations ?? {})]);
    for (const name of names) expect(name).toMatch(/^[-_\p{L}\p{N}]{1,32}$/u);
    for (const name of names) expect(name).toBe(name.toLowerCase());
  });
});

describe('discord remembered languages', () => {
  const log = createLogger({ level: 'silent' });

  it('remembers each person\'s language across a restart, forgetting the longest unheard-of first', async () => {
    const first = new KnownLocales(root, log, 2);
    await first.open();
    expect(first.of('1')).toBeUndefined();
    first.remember('1', 'zh-Hans');
    first.remember('2', 'en');
    first.remember('1', 'zh-Hans');
    first.remember('3', 'en');
    await first.flushed();
    const again = new KnownLocales(root, log, 2);
    await again.open();
    expect([again.of('1'), again.of('2'), again.of('3')]).toEqual(['zh-Hans', undefined, 'en']);
  });

  it('starts empty from a damaged file and drops a language that has no catalogue any more', async () => {
    const file = path.join(root, 'locales.json');
    fs.writeFileSync(file, '{not json');
    const damaged = new KnownLocales(root, log);
    await damaged.open();
    expect(damaged.of('1')).toBeUndefined();
    fs.writeFileSync(file, JSON.stringify({ 1: 'tlh', 2: 'zh-Hans' }));
    const read = new KnownLocales(root, log);
    await read.open();
    expect([read.of('1'), read.of('2')]).toEqual([undefined, 'zh-Hans']);
  });
});
