/** A command line the `enhancer` command cannot take: said with the usage, exit code 2. */
export class UsageError extends Error {}
