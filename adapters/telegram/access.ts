/**
 * Who the bot listens to. In a group it answers only what is meant for it (commands, mentions, replies to its
 * own messages), as a person would expect with privacy mode off; and when an allowlist is set, only the users and
 * chats on it.
 */
import { Composer } from 'grammy';
import type { Message, UserFromGetMe } from 'grammy/types';
import type { TelegramContext, TelegramParts } from './context.js';
import { replyParams } from './reply.js';

/** Whether `message` in a group is addressed to the bot; in a private chat everything is. */
export function isAddressed(message: Message, me: UserFromGetMe): boolean {
  if (message.chat.type === 'private') return true;
  if (message.reply_to_message?.from?.id === me.id) return true;
  const text = message.text ?? message.caption ?? '';
  const entities = message.entities ?? message.caption_entities ?? [];
  const mention = `@${me.username}`.toLowerCase();
  for (const entity of entities) {
    const part = text.slice(entity.offset, entity.offset + entity.length).toLowerCase();
    if (entity.type === 'mention' && part === mention) return true;
    if (entity.type === 'text_mention' && entity.user.id === me.id) return true;
    // `/cmd` (meant for every bot in the group) or `/cmd@thisbot`, at the start.
    if (entity.type === 'bot_command' && entity.offset === 0 && (!part.includes('@') || part.endsWith(mention))) return true;
  }
  // Commands are not marked as entities in every client's captions: `/enhance` at the start counts too.
  return /^\/enhance(@\w+)?(\s|$)/i.test(text) && (!/^\/enhance@/i.test(text) || text.toLowerCase().startsWith(`/enhance${mention}`));
}

/** The allowlists: both empty lets everyone in. */
export interface Allowlist {
  users: readonly number[];
  chats: readonly number[];
}

/**
 * @example
 * isAllowed({ users: [42], chats: [] }, 42, 42);  // true
 * isAllowed({ users: [42], chats: [] }, 7, -100); // false
 */
export function isAllowed(list: Allowlist, user: number | undefined, chat: number | undefined): boolean {
  if (list.users.length === 0 && list.chats.length === 0) return true;
  return (user !== undefined && list.users.includes(user)) || (chat !== undefined && list.chats.includes(chat));
}

/**
 * The door's gate, before any handler: in groups only what is meant for the bot goes on (callback queries come
 * from its own buttons), and with an allowlist only its users and chats; anyone else is told once, in one line.
 */
export function gate(parts: Pick<TelegramParts, 'options' | 'log'>): Composer<TelegramContext> {
  const composer = new Composer<TelegramContext>();
  composer.on('message', async (ctx, next) => {
    if (isAddressed(ctx.msg, ctx.me)) await next();
  });
  composer.use(async (ctx, next) => {
    const { allowedUsers: users, allowedChats: chats } = parts.options.config;
    if (isAllowed({ users, chats }, ctx.from?.id, ctx.chat?.id)) return next();
    const refusal = ctx.t('telegram.private', { id: ctx.from?.id ?? '?' });
    parts.log.info({ user: ctx.from?.id, chat: ctx.chat?.id }, 'refused: not on the allowlist');
    if (ctx.callbackQuery) await ctx.answerCallbackQuery({ text: refusal });
    else if (ctx.msg) await ctx.reply(refusal, { reply_parameters: replyParams(ctx.msg.message_id) });
  });
  return composer;
}
