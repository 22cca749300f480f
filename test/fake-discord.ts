/**
 * A small Discord of our own on 127.0.0.1 for the real discord.js client: the REST routes the bot uses (gateway
 * address, the bot user, command registration, interaction callbacks, webhook edits and follow-ups, channel
 * messages, DM channels, all with multipart file uploads), a CDN path serving attachments, and the gateway
 * WebSocket (hello, identify, heartbeat and ack, ready, guild create, dispatches) in plain JSON without zlib.
 * Every REST call is recorded so tests can assert what a person would have seen, in order; any call can be
 * answered with a 429 once; channels can be made to vanish and DMs to be closed.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { Changes } from './changes.js';

/** A file uploaded with a call. */
export interface UploadedFile {
  field: string;
  name: string;
  bytes: Buffer;
}

/** One REST call as the fake saw it. */
export interface Call {
  method: string;
  /** The path after `/api/v10`, tokens included (the tests check them). */
  path: string;
  headers: http.IncomingHttpHeaders;
  /** The JSON body (or `payload_json` of a multipart body). */
  body: any;
  files: UploadedFile[];
  status: number;
  /** What the fake answered. */
  response: any;
  /** When it arrived (ms since the epoch). */
  at: number;
  /** The query string, without `?`. */
  query: string;
}

type Json = Record<string, any>;
type Match = (call: Call) => boolean;

const EPOCH = 1_420_070_400_000n;
let increment = 0n;

/** A snowflake for now: discord.js reads an interaction's creation time from its id. */
export function snowflake(at = Date.now()): string {
  increment = (increment + 1n) % 4096n;
  return ((BigInt(at) - EPOCH) << 22n | increment).toString();
}

export interface FakeUser {
  id: string;
  username: string;
  discriminator: string;
  global_name: string | null;
  avatar: null;
  bot?: boolean;
}

export const user = (id: string, username: string, bot = false): FakeUser => ({ id, username, discriminator: '0', global_name: username, avatar: null, ...(bot ? { bot } : {}) });

export interface FakeDiscordOptions {
  token: string;
  application?: string;
  /** The server the bot is in, its boost tier and its preferred language (`en-US` unless given). */
  guild?: { id: string; channel: string; premiumTier?: number; preferredLocale?: string };
}

export class FakeDiscord {
  readonly calls: Call[] = [];
  readonly bot: FakeUser;
  readonly application: string;
  readonly guild: { id: string; channel: string; premiumTier: number; preferredLocale: string };
  /** Identify payloads received on the gateway. */
  readonly identifies: Json[] = [];
  /** Resume payloads received on the gateway. */
  readonly resumes: Json[] = [];
  /** Channels that answer 404 Unknown Channel. */
  readonly goneChannels = new Set<string>();
  /** Users whose DMs answer 403 (50007). */
  readonly closedDms = new Set<string>();
  private readonly attachments = new Map<string, { bytes: Buffer; type: string }>();
  /** Interaction token → the id of its own reply message. */
  readonly originals = new Map<string, string>();
  private readonly failures: Array<{ match: Match; status: number; body: Json }> = [];
  private readonly changes = new Changes();
  private readonly sockets = new Set<WebSocket>();
  private readonly server: http.Server;
  private readonly wss: WebSocketServer;
  private sequence = 0;
  private port = 0;

  constructor(private readonly options: FakeDiscordOptions) {
    this.application = options.application ?? snowflake();
    this.bot = user(this.application, 'Enhancer', true);
    this.guild = { id: snowflake(), channel: snowflake(), premiumTier: 0, preferredLocale: 'en-US', ...options.guild };
    // A request cut off mid-body (the service killed at the end of a test) is dropped, not an unhandled error.
    this.server = http.createServer((req, res) => void this.handle(req, res).catch(() => res.destroy()));
    this.wss = new WebSocketServer({ server: this.server, path: '/gateway' });
    this.wss.on('connection', (socket) => this.connect(socket));
  }

  /** Starts serving, on `port` when given (a test that starts the bot before its Discord), else a free one. */
  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  /** What `DISCORD_API_ROOT` is set to. */
  get apiRoot(): string {
    return `http://127.0.0.1:${this.port}/api`;
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.terminate();
    this.wss.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  /** Answers the next call that matches with a 429 (once). */
  rateLimitOnce(match: Match): void {
    this.failOnce(match, 429, { message: 'You are being rate limited.', retry_after: 0.2, global: false });
  }

  /** Answers the next call that matches with `status` and `body` (once). */
  failOnce(match: Match, status: number, body: Json): void {
    this.failures.push({ match, status, body });
  }

  /** Resolves with the first call (from the start) that matches; fails after `timeoutMs`. */
  async waitFor(match: Match, what: string, timeoutMs = 60_000): Promise<Call> {
    return this.waitForCount(match, 1, what, timeoutMs).then((calls) => calls[0]);
  }

  /** Resolves once `n` calls match, with them. */
  async waitForCount(match: Match, n: number, what: string, timeoutMs = 60_000): Promise<Call[]> {
    return this.changes.until(
      () => {
        const found = this.calls.filter(match);
        return found.length >= n && found;
      },
      { what: () => `${what}; calls: ${this.calls.map((c) => `${c.method} ${c.path} ${c.status}`).join(' | ')}`, timeoutMs },
    );
  }

  /** Puts a file on the CDN; returns the attachment object Discord would send. */
  attachment(bytes: Buffer, filename: string, contentType = 'image/png'): Json {
    const id = snowflake();
    const url = `http://127.0.0.1:${this.port}/attachments/${this.guild.channel}/${id}/${encodeURIComponent(filename)}`;
    this.attachments.set(new URL(url).pathname, { bytes, type: contentType });
    return { id, filename, size: bytes.length, url, proxy_url: url, content_type: contentType };
  }

  /** A person in the server. */
  member(person: FakeUser): Json {
    return { user: person, roles: [], joined_at: new Date(0).toISOString(), deaf: false, mute: false, flags: 0, permissions: '2248473465835073' };
  }

  /** A message object as Discord sends it. */
  message(fields: { author: FakeUser; channel?: string; guild?: string | null; content?: string; attachments?: Json[]; mentions?: FakeUser[] }): Json {
    const guild = fields.guild === undefined ? this.guild.id : fields.guild;
    return {
      id: snowflake(),
      type: 0,
      channel_id: fields.channel ?? this.guild.channel,
      // Sent on MESSAGE_CREATE (discord-api-types: GatewayMessageCreateDispatchData); how a DM's channel is known.
      channel_type: guild ? 0 : 1,
      ...(guild ? { guild_id: guild, member: { roles: [], joined_at: new Date(0).toISOString(), deaf: false, mute: false, flags: 0 } } : {}),
      author: fields.author,
      content: fields.content ?? '',
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: fields.mentions ?? [],
      mention_roles: [],
      attachments: fields.attachments ?? [],
      embeds: [],
      pinned: false,
      flags: 0,
      components: [],
    };
  }

  /** Sends MESSAGE_CREATE for a message; returns it. */
  sendMessage(fields: Parameters<FakeDiscord['message']>[0]): Json {
    const message = this.message(fields);
    this.dispatch('MESSAGE_CREATE', message);
    return message;
  }

  /**
   * Sends INTERACTION_CREATE: an application command (`data`), or a button press (`type` 3). Returns the
   * interaction; its token is what webhook calls carry. `locale` is the person's Discord language (`en-US`
   * unless given).
   */
  interact(fields: { person: FakeUser; data: Json; type?: 2 | 3; dm?: boolean; channel?: string; message?: Json; attachmentSizeLimit?: number; locale?: string }): Json {
    const id = snowflake();
    const channel = fields.channel ?? (fields.dm ? snowflake() : this.guild.channel);
    const interaction: Json = {
      id,
      application_id: this.application,
      type: fields.type ?? 2,
      data: fields.data,
      token: `interaction-token-${id}-${'x'.repeat(40)}`,
      version: 1,
      channel_id: channel,
      channel: fields.dm ? { id: channel, type: 1, recipients: [fields.person] } : { id: channel, type: 0, guild_id: this.guild.id, name: 'general' },
      app_permissions: '2248473465835073',
      locale: fields.locale ?? 'en-US',
      entitlements: [],
      authorizing_integration_owners: { 0: this.guild.id },
      context: fields.dm ? 1 : 0,
      ...(fields.attachmentSizeLimit ? { attachment_size_limit: fields.attachmentSizeLimit } : {}),
      ...(fields.message ? { message: fields.message } : {}),
      ...(fields.dm ? { user: fields.person } : { guild_id: this.guild.id, guild_locale: this.guild.preferredLocale, member: this.member(fields.person) }),
    };
    this.dispatch('INTERACTION_CREATE', interaction);
    return interaction;
  }

  /** `/enhance` with an attachment and options. */
  enhance(person: FakeUser, image: Json, options: Record<string, string | number | boolean> = {}, extra: { dm?: boolean; attachmentSizeLimit?: number; locale?: string } = {}): Json {
    const types: Record<string, number> = { model: 3, scale: 4, format: 3, precision: 3, raw: 5, report: 5 };
    return this.interact({
      person,
      ...extra,
      data: {
        id: snowflake(),
        name: 'enhance',
        type: 1,
        options: [{ name: 'image', type: 11, value: image.id }, ...Object.entries(options).map(([name, value]) => ({ name, type: types[name], value }))],
        resolved: { attachments: { [image.id]: image } },
      },
    });
  }

  /** A slash command without options (`/queue`, `/cancel`). */
  command(person: FakeUser, name: string, locale?: string): Json {
    return this.interact({ person, locale, data: { id: snowflake(), name, type: 1 } });
  }

  /** Closes every gateway connection as a Discord restart would (4000: unknown error, which a client resumes after). */
  dropGateway(): void {
    for (const socket of this.sockets) socket.close(4000, 'unknown error');
  }

  /** Whether a client is connected to the gateway. */
  get connected(): number {
    return this.sockets.size;
  }

  /** Sends a gateway dispatch to every connected client. */
  dispatch(t: string, d: unknown): void {
    for (const socket of this.sockets) socket.send(JSON.stringify({ op: 0, t, s: ++this.sequence, d }));
  }

  /** Calls whose path matches `pattern`, with the given method. */
  matching(method: string, pattern: RegExp): Call[] {
    return this.calls.filter((c) => c.method === method && pattern.test(c.path));
  }

  private connect(socket: WebSocket): void {
    this.sockets.add(socket);
    socket.on('close', () => this.sockets.delete(socket));
    socket.send(JSON.stringify({ op: 10, d: { heartbeat_interval: 41_250 } }));
    socket.on('message', (raw) => {
      const { op, d } = JSON.parse(String(raw)) as { op: number; d: Json };
      if (op === 1) socket.send(JSON.stringify({ op: 11 }));
      else if (op === 6) {
        this.resumes.push(d);
        socket.send(JSON.stringify({ op: 0, t: 'RESUMED', s: ++this.sequence, d: {} }));
      }
      else if (op === 2) {
        this.identifies.push(d);
        const ready = {
          v: 10,
          user: this.bot,
          guilds: [{ id: this.guild.id, unavailable: true }],
          session_id: `session-${snowflake()}`,
          resume_gateway_url: `ws://127.0.0.1:${this.port}/gateway`,
          shard: [0, 1],
          application: { id: this.application, flags: 0 },
        };
        socket.send(JSON.stringify({ op: 0, t: 'READY', s: ++this.sequence, d: ready }));
        socket.send(JSON.stringify({ op: 0, t: 'GUILD_CREATE', s: ++this.sequence, d: this.guildPayload() }));
      }
    });
  }

  private guildPayload(): Json {
    const { id, channel, premiumTier, preferredLocale } = this.guild;
    return {
      id,
      name: 'Test server',
      icon: null,
      owner_id: snowflake(),
      unavailable: false,
      member_count: 2,
      large: false,
      joined_at: new Date(0).toISOString(),
      premium_tier: premiumTier,
      preferred_locale: preferredLocale,
      features: [],
      roles: [{ id, name: '@everyone', permissions: '2248473465835073', position: 0, color: 0, hoist: false, managed: false, mentionable: false, flags: 0 }],
      channels: [{ id: channel, type: 0, name: 'general', position: 0, permission_overwrites: [] }],
      members: [],
      emojis: [],
      stickers: [],
      threads: [],
      presences: [],
      voice_states: [],
      stage_instances: [],
      guild_scheduled_events: [],
    };
  }

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', `http://127.0.0.1:${this.port}`);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const raw = Buffer.concat(chunks);
    if (req.method === 'GET' && url.pathname.startsWith('/attachments/')) {
      const file = this.attachments.get(url.pathname);
      res.writeHead(file ? 200 : 404, { 'content-type': file?.type ?? 'text/plain' }).end(file?.bytes ?? 'not found');
      return;
    }
    const call: Call = { method: req.method ?? 'GET', path: decodeURIComponent(url.pathname).replace(/^\/api\/v\d+/, ''), headers: req.headers, body: undefined, files: [], status: 200, response: undefined, at: Date.now(), query: url.searchParams.toString() };
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Request(url, { method: 'POST', headers: { 'content-type': type }, body: raw }).formData();
      for (const [field, value] of form.entries()) {
        if (typeof value === 'string') {
          if (field === 'payload_json') call.body = JSON.parse(value);
        } else call.files.push({ field, name: value.name, bytes: Buffer.from(await value.arrayBuffer()) });
      }
    } else if (raw.length > 0) call.body = JSON.parse(raw.toString('utf8'));

    const failing = this.failures.findIndex((f) => f.match(call));
    const failure = failing >= 0 ? this.failures.splice(failing, 1)[0] : undefined;
    const [status, answer] = failure ? [failure.status, failure.body] : this.route(call);
    call.status = status;
    call.response = answer;
    this.calls.push(call);
    this.changes.notify();
    if (status === 429) {
      res
        .writeHead(429, { 'content-type': 'application/json', 'retry-after': '0.2', 'x-ratelimit-limit': '5', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset-after': '0.2', 'x-ratelimit-scope': 'user' })
        .end(JSON.stringify(answer));
      return;
    }
    if (status === 204) res.writeHead(204).end();
    else res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(answer));
  }

  /** The answer to a REST call: status and JSON. */
  private route(call: Call): [number, unknown] {
    const { method, path } = call;
    const unknownChannel = [404, { message: 'Unknown Channel', code: 10003 }] as [number, unknown];
    // Webhook and interaction routes are authorised by the token in their path; everything else by the bot token.
    const byPath = /^\/(webhooks|interactions)\//.test(path);
    if (!byPath && call.headers.authorization !== `Bot ${this.options.token}`) return [401, { message: '401: Unauthorized', code: 0 }];
    if (method === 'GET' && path === '/gateway/bot') {
      return [200, { url: `ws://127.0.0.1:${this.port}/gateway`, shards: 1, session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: 1 } }];
    }
    if (method === 'GET' && path === '/users/@me') return [200, this.bot];
    let m: RegExpMatchArray | null;
    if (method === 'PUT' && (m = path.match(/^\/applications\/(\d+)(?:\/guilds\/\d+)?\/commands$/))) {
      return [200, (call.body as Json[]).map((command) => ({ id: snowflake(), application_id: m![1], version: '1', ...command }))];
    }
    if (method === 'POST' && (m = path.match(/^\/interactions\/(\d+)\/([^/]+)\/callback$/))) {
      // A deferral or reply makes the interaction's own message; `with_response` asks for its id.
      const original = snowflake();
      this.originals.set(m[2], original);
      if (!/with_response=true/.test(call.query)) return [204, null];
      const { type } = call.body as Json;
      return [200, { interaction: { id: m[1], type: 2, response_message_id: original, response_message_loading: type === 5, response_message_ephemeral: false }, resource: { type } }];
    }
    if ((m = path.match(/^\/webhooks\/\d+\/([^/]+)(?:\/messages\/(@original|\d+))?$/))) {
      return [200, this.echo(call, m[2] === '@original' ? (this.originals.get(m[1]) ?? snowflake()) : snowflake())];
    }
    if (method === 'POST' && path === '/users/@me/channels') {
      const recipient = String((call.body as Json).recipient_id);
      if (this.closedDms.has(recipient)) return [403, { message: 'Cannot send messages to this user', code: 50007 }];
      return [200, { id: `dm${recipient}`, type: 1, recipients: [user(recipient, 'someone')] }];
    }
    if ((m = path.match(/^\/channels\/([^/]+)\/messages(?:\/(\d+))?$/))) {
      if (this.goneChannels.has(m[1])) return unknownChannel;
      if (m[1].startsWith('dm') && this.closedDms.has(m[1].slice(2))) return [403, { message: 'Cannot send messages to this user', code: 50007 }];
      return [200, this.echo(call, m[2] ?? snowflake(), m[1])];
    }
    return [404, { message: '404: Not Found', code: 0 }];
  }

  /** The message a create or edit call leaves behind. */
  private echo(call: Call, id: string, channel = this.guild.channel): Json {
    const body = (call.body ?? {}) as Json;
    return {
      ...this.message({ author: this.bot, channel, content: body.content ?? '' }),
      id,
      attachments: call.files.map((f) => ({ id: snowflake(), filename: f.name, size: f.bytes.length, url: 'http://127.0.0.1/none', proxy_url: 'http://127.0.0.1/none' })),
      components: body.components ?? [],
    };
  }
}
