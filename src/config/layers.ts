/**
 * Lays the embedded defaults, the config file and the environment over each other, remembering where every value
 * came from, then checks the whole with one zod schema and turns the first issue into a `ConfigError`.
 *
 * Objects merge key by key (a file may set only `limits.maxPixels`); anything else, records (objects of any keys)
 * included, is replaced whole by the later layer.
 */
import fs from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, issueLine, mustMessages, show, unknownKeyLine, type Source } from './errors.js';
import { isFolder } from './fields.js';

type Plain = Record<string, unknown>;

export interface Layers {
  defaults: Plain;
  /** The config file's contents (from `readConfigFile`) and the name errors call it by. */
  file: { value: unknown; name: string };
  /** Environment variables and the dotted key each one sets. */
  variables: Readonly<Record<string, string>>;
  env: NodeJS.ProcessEnv;
  /** Relative folders from the defaults and the file are taken from here; those from variables from the current folder. */
  root: string;
}

const DEFAULTS: Source = { from: 'the defaults', variable: false };

/**
 * Where each value came from, by dotted key: `$ENHANCER_WEB_PORT`, `web.port in config/enhancer.json`,
 * `web.port (the default)`. A key not found is read from its nearest parent's source.
 */
export type Origins = (key: string) => string;

/**
 * Lays the layers over each other and checks them against `schema`; throws `ConfigError`. `origins`, when given,
 * is filled with where each value came from.
 */
export function checkLayers<S extends z.ZodObject>(schema: S, layers: Layers, origins?: { of?: Origins }): z.output<S> {
  const raw: Plain = {};
  const sources = new Map<string, Source>();
  const setSource = (key: readonly string[], source: Source) => {
    const dotted = key.join('.');
    for (const other of sources.keys()) if (other.startsWith(`${dotted}.`)) sources.delete(other);
    sources.set(dotted, source);
  };
  const sourceOf = (key: readonly PropertyKey[]): Source => {
    for (let n = key.length; n >= 0; n--) {
      const source = sources.get(key.slice(0, n).join('.'));
      if (source) return source;
    }
    return DEFAULTS;
  };

  const lay = (target: Plain, value: Plain, at: string[], source: Source) => {
    const shape = shapeOf(schemaAt(schema, at))!;
    for (const [name, v] of Object.entries(value)) {
      const child = shape[name];
      if (!child) throw new ConfigError(unknownKeyLine(at.join('.'), name, source.from, Object.keys(shape)));
      if (isPlain(v) && shapeOf(child)) {
        if (!isPlain(target[name])) target[name] = {};
        lay(target[name] as Plain, v, [...at, name], source);
      } else {
        target[name] = v;
        setSource([...at, name], source);
      }
    }
  };
  lay(raw, structuredClone(layers.defaults), [], DEFAULTS);
  const fileSource = { from: layers.file.name, variable: false };
  if (!isPlain(layers.file.value)) throw new ConfigError(`${layers.file.name} must hold one JSON object (got ${show(layers.file.value, false)})`);
  lay(raw, layers.file.value, [], fileSource);
  for (const [name, key] of Object.entries(layers.variables)) {
    const value = layers.env[name];
    // An empty variable is as good as unset: `ENHANCER_DEVICE= npm start` keeps the file's value.
    if (value === undefined || value === '') continue;
    const parts = key.split('.');
    const parent = parts.slice(0, -1).reduce<unknown>((o, part) => (isPlain(o) ? (o[part] ??= {}) : undefined), raw);
    // Under a value that is not an object the file's own mistake is the one to report.
    if (!isPlain(parent)) continue;
    parent[parts.at(-1)!] = value;
    setSource(parts, { from: `$${name}`, variable: true });
  }

  if (origins) {
    origins.of = (dotted) => {
      const key = dotted.split('.');
      const source = sourceOf(key);
      if (source.variable) return source.from;
      return source === DEFAULTS ? `${dotted} (the default)` : `${dotted} in ${source.from}`;
    };
  }
  const result = schema.safeParse(raw, { error: mustMessages });
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const knownKeys = Object.keys(shapeOf(schemaAt(schema, issue.path)) ?? {});
    throw new ConfigError(issueLine(issue, { value: valueAt(raw, issue.path), source: sourceOf(issue.path), knownKeys }));
  }

  // Folders become absolute, each from where its value was written.
  const output = result.data as Plain;
  for (const [dotted, source] of sources) {
    const key = dotted.split('.');
    const value = valueAt(output, key);
    if (typeof value !== 'string' || !isFolderAt(schemaAt(schema, key))) continue;
    const parent = valueAt(output, key.slice(0, -1)) as Plain;
    parent[key.at(-1)!] = path.resolve(source.variable ? process.cwd() : layers.root, value);
  }
  return result.data;
}

/**
 * Reads a JSON config file. A missing file that was not asked for by name is an empty one; a file that cannot
 * be read or parsed is a `ConfigError`.
 */
export function readConfigFile(file: string, required: boolean): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (!required && (error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read ${file} (${(error as NodeJS.ErrnoException).code})`);
  }
  try {
    return JSON.parse(text);
  } catch (error) {
    // V8 quotes the text around the mistake, which may be a token: the reason is kept, the quote is not.
    const reason = (error as Error).message.replace(/, (\.\.\.)?".*"(\.\.\.)? is not valid JSON$/s, '');
    throw new ConfigError(`${file} is not valid JSON (${reason})`);
  }
}

/** The schema for the value at `key` under `schema`, through objects, records and lists. */
function schemaAt(schema: z.ZodType, key: readonly PropertyKey[]): z.ZodType | undefined {
  let at: z.ZodType | undefined = schema;
  for (const part of key) {
    const s = unwrap(at!);
    if (s instanceof z.ZodObject) at = s.shape[part as string] as z.ZodType | undefined;
    else if (s instanceof z.ZodRecord) at = s.valueType as z.ZodType;
    else if (s instanceof z.ZodArray) at = s.element as z.ZodType;
    else return undefined;
    if (!at) return undefined;
  }
  return at;
}

/** The keys an object schema allows, or undefined for anything that is not an object. */
function shapeOf(schema: z.ZodType | undefined): Record<string, z.ZodType> | undefined {
  const s = schema && unwrap(schema);
  return s instanceof z.ZodObject ? (s.shape as Record<string, z.ZodType>) : undefined;
}

function isFolderAt(schema: z.ZodType | undefined): boolean {
  for (let s = schema; s; s = inner(s)) if (isFolder(s)) return true;
  return false;
}

/** A schema without its wrappers (optional, default, preprocess …): the one that says what the value is. */
function unwrap(schema: z.ZodType): z.ZodType {
  let s = schema;
  for (let next = inner(s); next; next = inner(s)) s = next;
  return s;
}

function inner(s: z.ZodType): z.ZodType | undefined {
  if (
    s instanceof z.ZodOptional ||
    s instanceof z.ZodNullable ||
    s instanceof z.ZodDefault ||
    s instanceof z.ZodPrefault ||
    s instanceof z.ZodNonOptional ||
    s instanceof z.ZodReadonly ||
    s instanceof z.ZodCatch
  ) {
    return s.unwrap() as z.ZodType;
  }
  // A preprocess is a transform then the schema; a `.transform()` is the schema then a transform.
  if (s instanceof z.ZodPipe) return (s.in instanceof z.ZodTransform ? s.out : s.in) as z.ZodType;
  return undefined;
}

function valueAt(object: unknown, key: readonly PropertyKey[]): unknown {
  return key.reduce<unknown>((o, part) => (isPlain(o) || Array.isArray(o) ? (o as Plain)[part as string] : undefined), object);
}

function isPlain(value: unknown): value is Plain {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
