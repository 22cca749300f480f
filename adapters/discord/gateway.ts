/**
 * The gateway: the discord.js client that hears interactions and messages, its login, and how to tell a refused
 * token from a platform that cannot be reached (DoorConnection tries the second again, stops start-up on the
 * first). The client asks for no privileged intent (events/messages.ts says why none is needed).
 */
import { Client, DiscordAPIError, GatewayIntentBits, Partials } from 'discord.js';
import type { DiscordConfig } from './config.js';

/** Where discord.js sends its REST calls and fetches from: Discord's, or the configured roots (a fake in tests). */
export function restOptions(config: Pick<DiscordConfig, 'apiRoot' | 'cdnRoot'>): { api?: string; cdn?: string } {
  return {
    ...(config.apiRoot ? { api: config.apiRoot.replace(/\/+$/, '') } : {}),
    ...(config.cdnRoot ? { cdn: config.cdnRoot.replace(/\/+$/, '') } : {}),
  };
}

/** The gateway client: servers, their messages and DMs. */
export function gatewayClient(config: Pick<DiscordConfig, 'apiRoot' | 'cdnRoot'>): Client {
  return new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessages, GatewayIntentBits.DirectMessages],
    // DM channels are not cached before their first message; without this their messages are dropped.
    partials: [Partials.Channel],
    rest: restOptions(config),
  });
}

/**
 * Logs in and waits for the gateway's ready. A gateway that closes for good (4004 token refused, 4014 intents
 * not allowed) rejects with its close code. A client already up is left as it is: after a failed command
 * registration the gateway is already up, and logging in twice would not be.
 */
export async function login(client: Client, token: string): Promise<void> {
  if (client.isReady()) return;
  let closed: (event: { code: number }) => void = () => undefined;
  const ready = new Promise<void>((resolve, reject) => {
    client.once('clientReady', () => resolve());
    closed = (event) => reject(new GatewayClosed(event.code));
    client.once('shardDisconnect', closed);
  });
  try {
    await client.login(token);
    await ready;
  } finally {
    client.off('shardDisconnect', closed);
  }
}

/** The gateway closed a connection for good, before its ready. */
class GatewayClosed extends Error {
  constructor(readonly closeCode: number) {
    super(`the gateway closed the connection with code ${closeCode}`);
  }
}

/** Close codes after which Discord will not let the bot in as configured: 4004 token refused, 4014 intents not allowed. */
const REFUSING_CLOSE_CODES = [4004, 4014];

/** Discord refused the token (401, or a gateway close that says so): retrying cannot help. */
export function refusedToken(error: unknown): boolean {
  if (error instanceof GatewayClosed) return REFUSING_CLOSE_CODES.includes(error.closeCode);
  return (error as { code?: unknown }).code === 'TokenInvalid' || (error instanceof DiscordAPIError && error.status === 401);
}
