/**
 * The Discord adapter's small parts, without Discord: its config section, upload limits, the words it writes,
 * and how it keeps interaction tokens sealed and out of the log.
 */
import fs from 'node:fs';
import path from 'node:path';
import { DiscordAPIError } from 'discord.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { discordSection } from '../adapters/discord/config.js';
import { uploadLimit } from '../adapters/discord/limits.js';
import { Secrets } from '../adapters/discord/secrets.js';
import { displayName, progressBar, relativeTime, uploadName } from '../adapters/discord/text.js';
import { ConfigError, loadConfig } from '../src/config.js';
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
    expect(progressBar(3, 10)).toBe('`███░░░░░░░` 30%');
    expect(progressBar(0, 0)).toBe('`░░░░░░░░░░` 0%');
    expect(relativeTime(90_000, 1_000_000)).toBe('<t:1090:R>');
    expect(uploadName('../../etc/cat photo.jpg', 'png')).toBe('cat_photo.png');
    expect(uploadName('..', 'png', '.compare')).toBe('image.compare.png');
    expect(displayName('**bold** <@123>\nname.png')).toBe('bold 123 name.png');
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
});
