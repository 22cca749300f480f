/**
 * Who the bot answers: the allowlists of servers, channels and people (`discord.allowedGuilds`,
 * `allowedChannels`, `allowedUsers`; empty lists allow all). One rule for interactions and messages alike, so a
 * person refused a slash command is refused the same image sent in a DM.
 */
import type { DiscordConfig } from './config.js';

/**
 * Whether `user` may ask here. A DM has no server (`guild` null), so with a server allowlist DMs are refused.
 *
 * @example
 * allowed({ allowedGuilds: ['1'], allowedChannels: [], allowedUsers: [] }, null, '5', '7'); // false: a DM
 */
export function allowed(config: Pick<DiscordConfig, 'allowedGuilds' | 'allowedChannels' | 'allowedUsers'>, guild: string | null, channel: string | null, user: string): boolean {
  const { allowedGuilds, allowedChannels, allowedUsers } = config;
  if (allowedUsers.length > 0 && !allowedUsers.includes(user)) return false;
  if (allowedGuilds.length > 0 && (!guild || !allowedGuilds.includes(guild))) return false;
  if (allowedChannels.length > 0 && (!channel || !allowedChannels.includes(channel))) return false;
  return true;
}
