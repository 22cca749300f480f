/**
 * A chat door's connection to its platform, apart from the rest of the service: the credential check at start,
 * then connecting in the background with growing pauses while the platform cannot be reached, and the one line
 * `/healthz` shows meanwhile. Before this, a door connected inside `start()`: Telegram's getMe was retried by
 * grammY without end and a silent socket held it for grammY's 500 s timeout, so the worker never ran, an image
 * the hot folder had taken waited in `.working/`, and SIGTERM went unheard for as long (18 s and more, measured).
 */
import { OperatorError, type Logger } from '../../src/index.js';

/**
 * The platform refused the door's credentials (a revoked token, one of another bot): a configuration error, so
 * start-up stops with its message as the one line. Trying again cannot help.
 */
export class DoorRefused extends OperatorError {
  constructor(message: string) {
    super(message);
    this.name = 'DoorRefused';
  }
}

/** The first pause after a failed try, doubled after each one up to `MAX_PAUSE_MS` (as Telegram's repolling). */
export const FIRST_PAUSE_MS = 5_000;
export const MAX_PAUSE_MS = 5 * 60_000;
/**
 * How long the credential check at start, and by default each later try, may take. Telegram's getMe and Discord's
 * /gateway/bot answer in well under a second when the platform is there; a firewall that drops packets answers
 * never. So a silent platform delays start-up by 10 s, then the door goes on trying in the background.
 */
export const TRY_MS = 10_000;

export interface DoorConnectionOptions {
  /** The platform in words, for the log and `/healthz`: `Telegram`. */
  platform: string;
  /**
   * One try at connecting; resolves once the door works. `signal` aborts when the try has taken `tryMs` or the
   * door stops; a try that ignores it is still waited for before the next one starts.
   */
  connect(signal: AbortSignal): Promise<void>;
  /** The credential check at start when it is cheaper than `connect` (no gateway): default `connect`. */
  check?(signal: AbortSignal): Promise<void>;
  /** The one line to stop with when `error` says the platform refused the credentials; undefined otherwise. */
  refused(error: unknown): string | undefined;
  /** `error` in one line with no secret in it. */
  reason(error: unknown): string;
  /** Logs as the door's own logger (its `adapter` field). */
  logger: Logger;
  /** The limit of each try in the background (the check's is always `TRY_MS`). */
  tryMs?: number;
  firstPauseMs?: number;
}

/**
 * Connects a door and keeps trying while its platform cannot be reached. One warning when it first cannot, one
 * info line from the door when it is up (its `onUp`), the later failed tries only at debug level.
 *
 * @example
 * const connection = new DoorConnection({ platform: 'Telegram', connect: (signal) => bot.init(signal), refused, reason, logger });
 * await connection.check(stopSignal); // throws DoorRefused on a refused token
 * connection.start(() => poll());     // now, or once Telegram can be reached
 * connection.problem;                 // 'cannot reach Telegram (…); trying again' meanwhile
 */
export class DoorConnection {
  private state: 'new' | 'checked' | 'up' | 'unreachable' | 'refused' = 'new';
  private why = '';
  private warned = false;
  private timer?: NodeJS.Timeout;
  private trying?: Promise<void>;
  private onUp?: () => void;
  private readonly stopper = new AbortController();

  constructor(private readonly options: DoorConnectionOptions) {}

  /** Null while the door is connected, else why not, in one line. */
  get problem(): string | null {
    switch (this.state) {
      case 'up':
        return null;
      case 'unreachable':
        return `cannot reach ${this.options.platform} (${this.why}); trying again`;
      case 'refused':
        return this.why;
      default:
        return `not connected to ${this.options.platform} yet`;
    }
  }

  /**
   * The check before any door starts: resolves when the platform accepted the credentials, and also when it could
   * not be reached (the warning is logged; `start` tries again later); rejects with a `DoorRefused` when they were
   * refused. Returns within `TRY_MS`, or as soon as `signal` (a stop request) aborts.
   */
  async check(signal?: AbortSignal): Promise<void> {
    const check = this.options.check ?? this.options.connect;
    const error = await this.attempt(check, TRY_MS, signal);
    // Stopping: start-up ends here, with nothing to say about the platform.
    if (signal?.aborted) return;
    if (error === undefined) {
      this.state = this.options.check ? 'checked' : 'up';
      return;
    }
    const refusal = this.options.refused(error);
    if (refusal !== undefined) {
      this.state = 'refused';
      this.why = refusal;
      throw new DoorRefused(refusal);
    }
    this.failed(error, this.options.firstPauseMs ?? FIRST_PAUSE_MS);
  }

  /**
   * Calls `onUp` once the door is connected: at once when it is, else after the tries in the background succeed.
   * A door whose check could not reach the platform tries again after the first pause.
   */
  start(onUp: () => void): void {
    this.onUp = onUp;
    const first = this.options.firstPauseMs ?? FIRST_PAUSE_MS;
    if (this.state === 'up') onUp();
    else if (this.state === 'unreachable') this.later(first);
    else if (this.state !== 'refused') void this.tryNow(first);
  }

  /** No more tries; a try under way is aborted. */
  stop(): void {
    this.stopper.abort();
    clearTimeout(this.timer);
  }

  private later(pauseMs: number): void {
    if (this.stopper.signal.aborted) return;
    this.timer = setTimeout(() => void this.tryNow(Math.min(pauseMs * 2, MAX_PAUSE_MS)), pauseMs);
  }

  /** One try; after a failure, the next after `nextPauseMs`. */
  private async tryNow(nextPauseMs: number): Promise<void> {
    const error = await this.attempt(this.options.connect, this.options.tryMs ?? TRY_MS);
    if (this.stopper.signal.aborted) return;
    if (error === undefined) {
      this.state = 'up';
      this.onUp?.();
      return;
    }
    const refusal = this.options.refused(error);
    if (refusal !== undefined) {
      this.state = 'refused';
      this.why = refusal;
      this.options.logger.error({ why: refusal }, `${this.options.platform} refused the credentials; the door stays closed until the service restarts`);
      return;
    }
    this.failed(error, nextPauseMs);
    this.later(nextPauseMs);
  }

  private failed(error: unknown, retryInMs: number): void {
    this.state = 'unreachable';
    this.why = this.options.reason(error);
    const line = `cannot reach ${this.options.platform}; trying again in the background`;
    const fields = { why: this.why, retryInS: retryInMs / 1000 };
    if (this.warned) this.options.logger.debug(fields, line);
    else this.options.logger.warn(fields, line);
    this.warned = true;
  }

  /**
   * Runs `task` with a signal that aborts after `tryMs`, on stop, or on `outer`; resolves with its error, or
   * undefined. Returns when the signal aborts even if `task` does not heed it, but the next try waits for it.
   */
  private async attempt(task: (signal: AbortSignal) => Promise<void>, tryMs: number, outer?: AbortSignal): Promise<unknown> {
    await this.trying;
    // A timer of its own rather than AbortSignal.timeout() inside AbortSignal.any(): on Node 20.20 that pair never
    // fired against a server that accepts the connection and stays silent (start-up waited past a minute).
    const controller = new AbortController();
    const late = setTimeout(() => controller.abort(new Error(`no answer within ${tryMs / 1000} s`)), tryMs);
    const abort = () => controller.abort(new Error('stopped'));
    const sources = [this.stopper.signal, ...(outer ? [outer] : [])];
    for (const source of sources) {
      if (source.aborted) abort();
      else source.addEventListener('abort', abort, { once: true });
    }
    const { signal } = controller;
    const running = Promise.resolve()
      .then(() => task(signal))
      .then(
        () => undefined,
        (error: unknown) => error ?? new Error('failed'),
      );
    this.trying = running.then(() => undefined);
    const aborted = new Promise<unknown>((resolve) => {
      if (signal.aborted) resolve(signal.reason);
      else signal.addEventListener('abort', () => resolve(signal.reason), { once: true });
    });
    try {
      return await Promise.race([running, aborted]);
    } finally {
      clearTimeout(late);
      for (const source of sources) source.removeEventListener('abort', abort);
    }
  }
}
