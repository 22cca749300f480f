/**
 * The Discord bot's config section, `discord` in config/enhancer.json. The bot runs when `DISCORD_TOKEN` is set;
 * everything else has a default that suits a bot in a few servers.
 */
import { z } from 'zod';
import { defineSection, wholeNumber, type SectionValue } from '../../src/index.js';

/** Discord ids are snowflakes: decimal numbers of up to 20 digits. */
const SNOWFLAKE = /^\d{1,20}$/;

/**
 * A list of Discord ids: a JSON array in the file, or a comma-separated string in a variable ("1,2,3"). Empty
 * means everyone is allowed.
 */
function idList() {
  const error = 'must be a list of Discord ids (numbers), e.g. "123,456"';
  return z.preprocess(
    (value: unknown) =>
      typeof value === 'string'
        ? value
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)
        : value,
    z.array(z.string({ error }).regex(SNOWFLAKE, { error }), { error }),
  );
}

/** An http(s) address, or empty for Discord's own. */
function address() {
  const error = 'must be an http:// or https:// address';
  return z.string({ error }).refine((value) => value === '' || /^https?:\/\/[^\s/]+/.test(value), { error });
}

/** An application or guild id, or empty. */
function optionalId() {
  const error = 'must be a Discord id (a number)';
  return z.string({ error }).refine((value) => value === '' || SNOWFLAKE.test(value), { error });
}

/**
 * The `discord` section.
 *
 * @example
 * const { token, guildId } = loadConfig({ sections: [discordSection] }).sections.discord;
 */
export const discordSection = defineSection({
  key: 'discord',
  schema: z.strictObject({
    /** The bot token; empty turns the bot off. Never shown in errors or logs. */
    token: z.string(),
    /** The application id (Developer Portal, General Information); empty: taken from the token's own user. */
    applicationId: optionalId(),
    /** Replaces Discord's REST base (`https://discord.com/api`); the gateway address then comes from its `/gateway/bot`. */
    apiRoot: address(),
    /** Where attachments may be downloaded from; empty: Discord's CDN, or the `apiRoot`'s server when that is set. */
    cdnRoot: address(),
    /** Registers the commands in this one server (at once: for development) instead of globally. */
    guildId: optionalId(),
    /** When not empty, only these servers, channels (DM channels included) and people are answered. */
    allowedGuilds: idList(),
    allowedChannels: idList(),
    allowedUsers: idList(),
    /** The upload limit when Discord says none (a DM, an interaction without one): 10 MiB, Discord's free limit. */
    uploadLimitBytes: wholeNumber(1, 2 ** 31),
    /**
     * The least time between two edits of one progress message. Discord does not document the number (its
     * buckets come in response headers, which discord.js waits out); the commonly reported one is 5 edits per
     * 5 s per message, and the final answer shares it, so 3 s keeps well clear. Not measured against Discord.
     */
    progressEveryMs: wholeNumber(0, 600_000),
    /**
     * How long after an interaction the adapter stops using its token and moves to an ordinary message in the
     * channel. Discord's tokens last 15 minutes; 14 leaves a minute for the last edit.
     */
    interactionLifetimeMs: wholeNumber(1, 15 * 60_000),
  }),
  defaults: {
    token: '',
    applicationId: '',
    apiRoot: '',
    cdnRoot: '',
    guildId: '',
    allowedGuilds: [],
    allowedChannels: [],
    allowedUsers: [],
    uploadLimitBytes: 10 * 2 ** 20,
    progressEveryMs: 3000,
    interactionLifetimeMs: 14 * 60_000,
  },
  env: {
    DISCORD_TOKEN: 'token',
    DISCORD_APPLICATION_ID: 'applicationId',
    DISCORD_API_ROOT: 'apiRoot',
    DISCORD_CDN_ROOT: 'cdnRoot',
    DISCORD_GUILD_ID: 'guildId',
    DISCORD_ALLOWED_GUILDS: 'allowedGuilds',
    DISCORD_ALLOWED_CHANNELS: 'allowedChannels',
    DISCORD_ALLOWED_USERS: 'allowedUsers',
  },
});

/** The Discord bot's checked config. */
export type DiscordConfig = SectionValue<typeof discordSection>;
