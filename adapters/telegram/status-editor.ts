/**
 * Edits of a job's status message, throttled per chat: Telegram allows about one message or edit per second in a
 * chat (20 a minute in a group) and answers more with 429. Progress arrives after every tile (several a second on
 * a GPU), so only the latest text of each message is kept and sent when the chat's interval has passed; the
 * final word (done, failed, cancelled) goes at once and drops whatever was pending.
 */
import type { InlineKeyboardMarkup } from 'grammy/types';

/** One edit: the message and its new text and buttons (none: the buttons go). */
export interface StatusEdit {
  chat: number;
  message: number;
  text: string;
  buttons?: InlineKeyboardMarkup;
}

interface ChatState {
  /** When the last edit in this chat was sent. */
  last: number;
  /** The latest text per message, not yet sent. */
  pending: Map<number, StatusEdit>;
  timer?: NodeJS.Timeout;
  /** Edits go out one after another per chat, so a later text never lands before an earlier one. */
  chain: Promise<void>;
  /** Edits of this chat sent and not yet answered. */
  sending: number;
}

/**
 * @example
 * const editor = new StatusEditor((e) => api.editMessageText(e.chat, e.message, e.text), 3000, (err) => log.warn(err));
 * editor.update({ chat, message, text: 'Enhancing ▓▓░░░░░░░░ 2/10 tiles' }); // sent now, or within 3 s
 * await editor.final({ chat, message, text: 'Done in 12 s.' });
 */
export class StatusEditor {
  private readonly chats = new Map<number, ChatState>();
  private stopped = false;

  constructor(
    private readonly send: (edit: StatusEdit) => Promise<void>,
    private readonly intervalMs: number,
    private readonly onError: (error: unknown, edit: StatusEdit) => void,
  ) {}

  /** Throttled: sent now if the chat's interval has passed, else when it has (only the latest text per message). */
  update(edit: StatusEdit): void {
    if (this.stopped) return;
    const chat = this.chat(edit.chat);
    chat.pending.set(edit.message, edit);
    this.schedule(edit.chat, chat);
  }

  /**
   * Sent at once, not replaced by later updates: a job's first word (queued, its position), which a person
   * should see even when it starts a moment later.
   */
  now(edit: StatusEdit): void {
    if (this.stopped) return;
    this.enqueue(edit).catch((error: unknown) => this.onError(error, edit));
  }

  /** The last word on a message, sent at once; rejects when the edit fails (the caller decides). */
  final(edit: StatusEdit): Promise<void> {
    return this.enqueue(edit);
  }

  private enqueue(edit: StatusEdit): Promise<void> {
    const chat = this.chat(edit.chat);
    chat.pending.delete(edit.message);
    chat.last = Date.now();
    chat.sending++;
    const sending = chat.chain.then(() => this.send(edit));
    chat.chain = sending.catch(() => {}).finally(() => chat.sending--);
    return sending;
  }

  /** Drops whatever is pending; later updates are ignored. */
  stop(): void {
    this.stopped = true;
    for (const chat of this.chats.values()) clearTimeout(chat.timer);
    this.chats.clear();
  }

  private chat(id: number): ChatState {
    let chat = this.chats.get(id);
    if (!chat) {
      this.forgetIdle();
      this.chats.set(id, (chat = { last: 0, pending: new Map(), chain: Promise.resolve(), sending: 0 }));
    }
    return chat;
  }

  /**
   * Forgets the chats with nothing pending or under way whose interval has passed: a new state for them would
   * behave the same. Kept, the map held one entry per chat ever answered, for the life of the process.
   */
  private forgetIdle(): void {
    const now = Date.now();
    for (const [id, chat] of this.chats) {
      if (chat.pending.size === 0 && !chat.timer && chat.sending === 0 && now - chat.last >= this.intervalMs) this.chats.delete(id);
    }
  }

  /** Chats remembered now. */
  get size(): number {
    return this.chats.size;
  }

  private schedule(id: number, chat: ChatState): void {
    if (chat.timer || chat.pending.size === 0) return;
    const wait = Math.max(0, chat.last + this.intervalMs - Date.now());
    chat.timer = setTimeout(() => {
      chat.timer = undefined;
      const [first] = chat.pending.values();
      if (!first || this.stopped) return;
      this.enqueue(first)
        .catch((error: unknown) => this.onError(error, first))
        .finally(() => this.schedule(id, chat));
    }, wait);
  }
}
