/**
 * An error whose message is a one-line reason meant for the person who sent the image. Anything else that
 * escapes the core is a bug and is reported as such.
 */
export class EnhanceError extends Error {
  constructor(
    message: string,
    /**
     * `input`: the image; `options`: a bad option; `model`: models missing or damaged; `device`: accelerator;
     * `limit`: a per-person or service limit (queue full, shutting down); `cancelled`: stopped by its owner.
     */
    readonly kind: 'input' | 'options' | 'model' | 'device' | 'limit' | 'cancelled',
  ) {
    super(message);
    this.name = 'EnhanceError';
  }
}

/** The one-line reason to show a person for any thrown value. */
export function reasonOf(error: unknown): string {
  if (error instanceof EnhanceError) return error.message;
  const message = error instanceof Error ? error.message : String(error);
  return `internal error: ${message.split('\n')[0]}`;
}
