/**
 * The hot folder end to end: the real service in a child process, real models, files on disk.
 */
import fs from 'node:fs';
import path from 'node:path';
import sharp from 'sharp';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { drawingPng, scenePng, tempDir } from './helpers.js';
import { listing, ServiceProcess, withConfig } from './service.js';

let dir: string;
let service: ServiceProcess | undefined;
const inbox = (...p: string[]) => path.join(dir, 'inbox', ...p);
const outbox = (...p: string[]) => path.join(dir, 'outbox', ...p);

beforeEach(() => {
  dir = tempDir('enhancer-hotfolder-');
  fs.mkdirSync(inbox(), { recursive: true });
});
afterEach(async () => {
  await service?.stop('SIGKILL');
  service = undefined;
  fs.rmSync(dir, { recursive: true, force: true });
});

function start(config: object = {}, env: Record<string, string> = {}): ServiceProcess {
  service = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { settleMs: 300, ...config } }), ...env });
  return service;
}

/** When a file arrived, as the hot folder reads it: its creation time where kept, else its modification time. */
function arrival(file: string): number {
  const stats = fs.statSync(file);
  return stats.birthtimeMs || stats.mtimeMs;
}

/** Resolves once a file created now gets a later time stamp than `stamp` (probed beside the inbox). */
async function nextStamp(stamp: number): Promise<void> {
  const probe = path.join(dir, '.stamp');
  for (;;) {
    fs.writeFileSync(probe, '');
    const now = arrival(probe);
    fs.rmSync(probe);
    if (now > stamp) return;
    await new Promise((resolve) => setImmediate(resolve));
  }
}

async function truncatedJpeg(): Promise<Buffer> {
  const jpeg = await sharp(await scenePng(64, 64, 9)).jpeg().toBuffer();
  return jpeg.subarray(0, jpeg.length >> 1);
}

describe('hot folder', () => {
  it('offers the anime scene: inbox/anime/ and inbox/anime-fast/ by default, at 2x and 3x by preset', async () => {
    const drawing = await drawingPng(24, 20);
    const s = start();
    await s.started();
    expect(['anime', 'anime-fast', 'fast', 'raw'].every((p) => fs.existsSync(inbox(p)))).toBe(true);
    fs.writeFileSync(inbox('anime-fast', 'lines.png'), drawing);
    await s.until(() => listing(inbox('done')).length === 1, 'the default preset done');
    expect(await sharp(outbox('lines.png')).metadata()).toMatchObject({ width: 96, height: 80 });
    await s.stop();

    const scaled = start({ presets: { anime: { model: 'anime', scale: 2 }, 'anime-fast': { model: 'anime-fast', scale: 3 } } });
    await scaled.started();
    fs.writeFileSync(inbox('anime', 'two.png'), drawing);
    fs.writeFileSync(inbox('anime-fast', 'three.png'), drawing);
    await scaled.until(() => listing(inbox('done')).length === 3, 'both presets done');
    expect(await sharp(outbox('two.png')).metadata()).toMatchObject({ width: 48, height: 40 });
    expect(await sharp(outbox('three.png')).metadata()).toMatchObject({ width: 72, height: 60 });
  });

  it('writes inbox/webp/ as .webp, the rest in hotfolder.format, a preset at its size, with GPS when metadata.keepGps', async () => {
    const config = withConfig(dir, { model: 'x4fast', hotfolder: { settleMs: 300, format: 'jpeg', presets: { small: { size: 64, format: 'avif' } } } });
    const s = new ServiceProcess(dir, { ...config, ENHANCER_KEEP_GPS: 'on' });
    service = s;
    await s.started();
    const gps = { IFD0: { Make: 'Canon' }, IFD3: { GPSLatitudeRef: 'N', GPSLatitude: '48/1 51/1 24/1' } };
    fs.writeFileSync(inbox('webp', 'a.png'), await sharp(await scenePng(24, 20, 1)).withExif(gps).png().toBuffer());
    fs.writeFileSync(inbox('b.png'), await scenePng(24, 20, 2));
    fs.writeFileSync(inbox('small', 'c.png'), await scenePng(24, 20, 3));
    await s.until(() => listing(inbox('done')).length === 3, 'three done');
    expect(listing(outbox()).filter((n) => !n.includes('.preview.') && !n.includes('.compare.') && !n.endsWith('.pdf'))).toEqual(['a.webp', 'b.jpg', 'c.avif']);
    expect(await sharp(outbox('a.webp')).metadata()).toMatchObject({ format: 'webp', width: 96, height: 80 });
    expect((await sharp(outbox('a.webp')).metadata()).exif?.toString('latin1')).toContain('N\0');
    expect(await sharp(outbox('b.jpg')).metadata()).toMatchObject({ format: 'jpeg', width: 96, height: 80 });
    expect(await sharp(outbox('c.avif')).metadata()).toMatchObject({ format: 'heif', width: 64, height: 53 });
  });

  it('turns three images and two bad files dropped at once into three full results and two reasons, and keeps going', async () => {
    const good = { 'one.png': await scenePng(24, 20, 1), 'two.png': await scenePng(20, 24, 2), 'three.jpg': await sharp(await scenePng(28, 28, 3)).jpeg().toBuffer() };
    const bad = { 'empty.jpg': Buffer.alloc(0), 'cut.jpg': await truncatedJpeg() };
    const s = start();
    await s.started();
    for (const [name, bytes] of Object.entries({ ...good, ...bad })) fs.writeFileSync(inbox(name), bytes);
    await s.until(() => listing(inbox('done')).length === 3 && listing(inbox('failed')).length === 4, 'three done and two failed');

    expect(listing(outbox())).toEqual(
      ['one', 'three', 'two'].flatMap((stem) => [`${stem}.compare.jpg`, `${stem}.pdf`, `${stem}.png`, `${stem}.preview.jpg`]).sort(),
    );
    for (const [name, bytes] of Object.entries(good)) {
      const stem = path.parse(name).name;
      const input = await sharp(bytes).metadata();
      const png = await sharp(outbox(`${stem}.png`)).metadata();
      expect([png.format, png.width, png.height]).toEqual(['png', input.width! * 4, input.height! * 4]);
      const preview = await sharp(outbox(`${stem}.preview.jpg`)).metadata();
      expect([preview.format, Math.max(preview.width!, preview.height!) <= 512]).toEqual(['jpeg', true]);
      const compare = await sharp(outbox(`${stem}.compare.jpg`)).metadata();
      expect(compare.width!).toBeGreaterThan(2 * Math.max(png.width!, 300));
      expect(fs.readFileSync(outbox(`${stem}.pdf`)).subarray(0, 5).toString()).toBe('%PDF-');
      // The original moved, byte for byte.
      expect(fs.readFileSync(inbox('done', name)).equals(bytes)).toBe(true);
    }
    for (const [name, bytes] of Object.entries(bad)) {
      expect(fs.readFileSync(inbox('failed', name)).equals(bytes)).toBe(true);
    }
    expect(fs.readFileSync(inbox('failed', 'empty.jpg.error.txt'), 'utf8')).toBe('the file is empty (0 bytes)\n');
    const cut = fs.readFileSync(inbox('failed', 'cut.jpg.error.txt'), 'utf8');
    expect(cut).toBe('the file is damaged or incomplete: send it again, or export it anew\n');
    expect(cut.trim().split('\n')).toHaveLength(1);
    expect(listing(inbox())).toEqual(['anime', 'anime-fast', 'avif', 'done', 'failed', 'fast', 'jpeg', 'png', 'raw', 'webp']);

    // Still running: the next file is taken, and a same-named drop never overwrites the first result.
    fs.writeFileSync(inbox('one.png'), await scenePng(16, 16, 4));
    await s.until(() => listing(inbox('done')).length === 4, 'the fourth file');
    expect(listing(outbox()).filter((n) => n.startsWith('one-1.'))).toHaveLength(4);
    expect(listing(inbox('done'))).toContain('one-1.png');
    expect(s.running).toBe(true);
  });

  it('writes the reasons of failed files in the language of hotfolder.locale', async () => {
    const s = start({ locale: 'zh-Hans' });
    await s.started();
    fs.writeFileSync(inbox('empty.jpg'), Buffer.alloc(0));
    fs.writeFileSync(inbox('cut.jpg'), await truncatedJpeg());
    await s.until(() => listing(inbox('failed')).length === 4, 'both failed');
    expect(fs.readFileSync(inbox('failed', 'empty.jpg.error.txt'), 'utf8')).toBe('文件是空的（0 字节）\n');
    const cut = fs.readFileSync(inbox('failed', 'cut.jpg.error.txt'), 'utf8');
    expect(cut).toBe('文件已损坏或不完整：请重新发送，或重新导出一次\n');
    expect(cut).not.toMatch(/damaged|incomplete/);
    // The log stays English, for whoever runs it.
    expect(s.lines('moved to failed/').map((l) => l.reason).sort()).toEqual(['the file is damaged or incomplete: send it again, or export it anew', 'the file is empty (0 bytes)']);
  });

  it('finishes a job whose service was killed mid-inference, once, after a restart', async () => {
    const photo = await scenePng(96, 96, 5);
    let s = start({}, { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' });
    await s.started();
    fs.writeFileSync(inbox('photo.png'), photo);
    await s.count('job started', 1);
    // Killed as soon as the model is loaded: nine x4plus tiles are still to run, so nothing can be written yet.
    await s.until((logs) => logs.some((l) => l.msg === 'model loaded'), 'the model to load');
    expect(await s.stop('SIGKILL')).toMatchObject({ signal: 'SIGKILL' });
    expect(listing(outbox())).toEqual([]);
    expect(listing(inbox())).toEqual(['anime', 'anime-fast', 'avif', 'done', 'failed', 'fast', 'jpeg', 'png', 'raw', 'webp']);

    s = start({}, { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' });
    await s.started();
    expect(s.lines('service started')[0].recovered).toBe(1);
    await s.count('job completed', 1, 120_000);
    await s.until(() => listing(inbox('done')).length === 1, 'the original to move');
    expect(listing(outbox())).toEqual(['photo.compare.jpg', 'photo.pdf', 'photo.png', 'photo.preview.jpg']);
    expect(fs.readdirSync(outbox()).filter((n) => n.startsWith('.'))).toEqual([]);
    expect(fs.readFileSync(inbox('done', 'photo.png')).equals(photo)).toBe(true);
    expect(await sharp(outbox('photo.png')).metadata()).toMatchObject({ width: 384, height: 384 });
    // Delivered: the spool keeps nothing.
    await s.count('job delivered', 1);
    expect(fs.readdirSync(path.join(dir, 'data', 'jobs'))).toEqual([]);
  });

  it('answers files whose names are 250 bytes long, good and bad, without ENAMETOOLONG', async () => {
    // 250 bytes: 83 three-byte characters and a .png, so cutting must keep whole characters too.
    const long = `${'é'.repeat(61)}${'x'.repeat(124)}.png`;
    const bad = `${'b'.repeat(246)}.jpg`;
    expect([Buffer.byteLength(long), Buffer.byteLength(bad)]).toEqual([250, 250]);
    const bytes = await scenePng(20, 16, 15);
    const s = start({ pdf: false });
    await s.started();
    fs.writeFileSync(inbox(long), bytes);
    fs.writeFileSync(inbox(bad), 'not a picture');
    await s.until(() => listing(inbox('done')).length === 1 && listing(inbox('failed')).length === 2, 'both answers');
    // The original keeps its name; the results get the longest stem that fits with their suffixes.
    expect(fs.readFileSync(inbox('done', long)).equals(bytes)).toBe(true);
    const outputs = listing(outbox());
    expect(outputs).toHaveLength(3);
    for (const name of outputs) expect(Buffer.byteLength(name)).toBeLessThanOrEqual(255);
    expect(await sharp(outbox(outputs.find((n) => n.endsWith('.png'))!)).metadata()).toMatchObject({ width: 80, height: 64 });
    const [original, reason] = listing(inbox('failed'));
    expect(reason).toBe(`${original}.error.txt`);
    expect(Buffer.byteLength(reason)).toBeLessThanOrEqual(255);
    expect(fs.readFileSync(inbox('failed', original), 'utf8')).toBe('not a picture');
    expect(fs.readFileSync(inbox('failed', reason), 'utf8')).toMatch(/^not an image in a supported format/);
    expect(s.logs.filter((l) => l.level >= 50)).toEqual([]);
  });

  it('keeps a finished job whose results cannot be written, across a restart, and writes them once when it can', async () => {
    const begin = () => (service = new ServiceProcess(dir, withConfig(dir, { delivery: { firstRetryMs: 100, maxRetryMs: 400 }, hotfolder: { settleMs: 300 } })));
    const bytes = await scenePng(24, 24, 16);
    // A folder that is a file is refused at start with one plain line.
    fs.writeFileSync(outbox(), 'in the way');
    let s = begin();
    expect((await s.exited).code).toBe(1);
    expect(s.stderr.filter(Boolean)).toEqual([`error: the hot folder's outbox ${outbox()} is a file, not a folder`]);
    fs.rmSync(outbox());

    s = begin();
    await s.started();
    // The outbox becomes a file while the service runs: every delivery fails (ENOTDIR).
    fs.rmSync(outbox(), { recursive: true });
    fs.writeFileSync(outbox(), 'in the way');
    fs.writeFileSync(inbox('late.png'), bytes);
    await s.count('delivery failed; trying again later', 2);
    expect(await s.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(s.lines('job completed')).toHaveLength(1);
    expect(listing(inbox('done'))).toEqual([]);

    fs.rmSync(outbox());
    fs.mkdirSync(outbox());
    s = begin();
    await s.count('job delivered', 1);
    // Delivered from what was kept: the model did not run again.
    expect(s.lines('job started')).toEqual([]);
    expect(s.lines('ended job recovered from the spool; delivering it again')).toHaveLength(1);
    expect(listing(outbox())).toEqual(['late.compare.jpg', 'late.pdf', 'late.png', 'late.preview.jpg']);
    expect(await sharp(outbox('late.png')).metadata()).toMatchObject({ width: 96, height: 96 });
    expect(fs.readFileSync(inbox('done', 'late.png')).equals(bytes)).toBe(true);
    expect(fs.readdirSync(path.join(dir, 'data', 'jobs'))).toEqual([]);
  });

  it('takes a file written slowly only once it is complete, and only once', async () => {
    const bytes = await scenePng(48, 48, 6);
    const s = start({ settleMs: 1500 });
    await s.started();
    const fd = fs.openSync(inbox('slow.png'), 'w');
    const chunks = 6;
    const step = Math.ceil(bytes.length / chunks);
    for (let i = 0; i < chunks; i++) {
      fs.writeSync(fd, bytes.subarray(i * step, (i + 1) * step));
      // A slow writer's pace, well inside settleMs: this pause is the scenario, not a wait for the service.
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    // Not taken while it was still being written (the log is read as it comes, so a take would show here).
    expect(s.lines('taken from the inbox')).toEqual([]);
    fs.closeSync(fd);
    await s.count('job completed', 1);
    expect(s.lines('taken from the inbox')).toHaveLength(1);
    await s.until(() => listing(inbox('done')).length === 1, 'the original to move');
    expect(listing(inbox('failed'))).toEqual([]);
    expect(fs.readFileSync(inbox('done', 'slow.png')).equals(bytes)).toBe(true);
    expect(listing(outbox()).filter((n) => n.endsWith('.png'))).toEqual(['slow.png']);
  });

  it('processes fifty files dropped at once exactly once each, in arrival order, in bounded memory', async () => {
    const s = start({ pdf: false });
    await s.started();
    // Arrival order differs from name order: 7 steps round a ring of 50.
    const names = Array.from({ length: 50 }, (_, i) => `n${String((i * 7) % 50).padStart(2, '0')}.png`);
    const images = await Promise.all(names.map((_, i) => scenePng(16, 16, 100 + i)));
    let stamp = 0;
    for (const [i, name] of names.entries()) {
      // File times tick with the kernel's clock (a few ms): each file waits until the clock stamps a later time
      // than the one before, as a copy tool's pace would, so arrival order is the order written.
      await nextStamp(stamp);
      fs.writeFileSync(inbox(name), images[i]);
      stamp = arrival(inbox(name));
    }
    await s.count('job completed', 50, 150_000);
    const completed = s.lines('job completed');
    expect(completed.map((l) => l.name)).toEqual(names);
    expect(completed.every((l) => l.cached === false)).toBe(true);
    await s.until(() => listing(inbox('done')).length === 50, 'fifty originals to move');
    expect(listing(outbox()).filter((n) => n.endsWith('.png'))).toEqual([...names].sort());
    expect(listing(inbox('failed'))).toEqual([]);
    const peak = Math.max(...completed.map((l) => Number(l.rssMB)));
    expect(peak).toBeLessThan(400);
  });

  it('answers the same file dropped twice from the cache', async () => {
    const bytes = await scenePng(40, 40, 7);
    const s = start({ pdf: false });
    await s.started();
    fs.writeFileSync(inbox('first.png'), bytes);
    await s.count('job completed', 1);
    fs.writeFileSync(inbox('again.png'), bytes);
    await s.count('job completed', 2);
    const [first, second] = s.lines('job completed');
    expect([first.cached, second.cached]).toEqual([false, true]);
    expect(s.lines('model loaded')).toHaveLength(1);
    await s.until(() => listing(inbox('done')).length === 2, 'both originals to move');
    expect(fs.readFileSync(outbox('again.png')).equals(fs.readFileSync(outbox('first.png')))).toBe(true);
  });

  it('runs inbox/<preset>/ with its options, refuses links, and leaves other folders and hidden or partial files alone', async () => {
    const s = start({ pdf: false }, { ENHANCER_MODEL: 'x4plus' });
    await s.started();
    fs.mkdirSync(inbox('mine'));
    fs.writeFileSync(inbox('mine', 'keep.png'), await scenePng(16, 16, 8));
    fs.writeFileSync(inbox('.hidden.png'), await scenePng(16, 16, 8));
    fs.writeFileSync(inbox('download.png.part'), await scenePng(16, 16, 8));
    fs.writeFileSync(inbox('fast', 'quick.png'), await scenePng(16, 16, 9));
    const stamp = Math.max(...[inbox('mine', 'keep.png'), inbox('.hidden.png'), inbox('download.png.part')].map(arrival));
    const outside = path.join(dir, 'outside.png');
    fs.writeFileSync(outside, await scenePng(16, 16, 10));
    fs.symlinkSync(outside, inbox('link.png'));
    await s.count('job completed', 1);
    await s.until(() => fs.existsSync(inbox('failed', 'link.png.error.txt')), 'the link to be refused');
    expect(fs.readFileSync(inbox('failed', 'link.png.error.txt'), 'utf8')).toBe('symbolic links are not taken: put the image file itself in the inbox\n');
    expect(fs.lstatSync(inbox('failed', 'link.png')).isSymbolicLink()).toBe(true);
    expect(fs.existsSync(outside)).toBe(true);
    // A last file, arrived after the ones to leave alone: files are taken in arrival order, so once it is done,
    // any of those that were to be taken would have been taken before it.
    await nextStamp(stamp);
    fs.writeFileSync(inbox('fast', 'last.png'), await scenePng(16, 16, 11));
    await s.count('job completed', 2);
    expect(s.lines('job started').map((l) => l.name)).toEqual(['quick.png', 'last.png']);
    expect(s.lines('model loaded')[0].model).toBe('x4fast');
    expect(listing(inbox('mine'))).toEqual(['keep.png']);
    expect(fs.existsSync(inbox('.hidden.png')) && fs.existsSync(inbox('download.png.part'))).toBe(true);
    expect(s.logs.some((l) => l.level === 40 && /inbox\/mine\/ is not a preset folder/.test(l.msg))).toBe(true);
  });

  it('on SIGTERM lets the running job finish and deliver, then exits 0', async () => {
    const s = start({ pdf: false }, { ENHANCER_MODEL: 'x4plus', ENHANCER_TILE: '32' });
    await s.started();
    fs.writeFileSync(inbox('busy.png'), await scenePng(64, 64, 12));
    await s.count('model loaded', 1);
    expect(await s.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(s.lines('job completed')).toHaveLength(1);
    expect(listing(outbox())).toEqual(['busy.compare.jpg', 'busy.png', 'busy.preview.jpg']);
    expect(listing(inbox('done'))).toEqual(['busy.png']);
  });

  it('takes files that were there before it started, and one an earlier run had taken but not yet queued', async () => {
    // As a crash right after the move into .working/ leaves it.
    const bytes = await scenePng(20, 20, 13);
    fs.mkdirSync(inbox('.working', 'fast'), { recursive: true });
    fs.writeFileSync(inbox('.working', 'fast', '0mwu00000abcdef-left.png'), bytes);
    fs.mkdirSync(inbox('fast'));
    fs.writeFileSync(inbox('fast', 'waiting.png'), await scenePng(20, 20, 14));
    const s = start({ pdf: false }, { ENHANCER_MODEL: 'x4plus' });
    await s.count('job completed', 2);
    expect(s.lines('job completed').map((l) => l.name)).toEqual(['left.png', 'waiting.png']);
    expect(s.lines('model loaded').map((l) => l.model)).toEqual(['x4fast', 'x4fast']);
    await s.until(() => listing(inbox('done')).length === 2, 'the originals to move');
    expect(fs.readFileSync(inbox('done', 'left.png')).equals(bytes)).toBe(true);
    expect(listing(outbox())).toEqual(['left.compare.jpg', 'left.png', 'left.preview.jpg', 'waiting.compare.jpg', 'waiting.png', 'waiting.preview.jpg']);
    expect(fs.readdirSync(inbox('.working', 'fast'))).toEqual([]);
  });

  it('stops cleanly on SIGTERM and refuses a bad config value with one line', async () => {
    const s = start();
    await s.started();
    expect(await s.stop('SIGTERM')).toEqual({ code: 0, signal: null });
    expect(s.lines('stopped')).toHaveLength(1);

    const bad = new ServiceProcess(dir, { ...withConfig(dir, { hotfolder: { settleMs: 'soon' } }) });
    expect((await bad.exited).code).toBe(2);
    expect(bad.stderr.filter(Boolean)).toEqual([
      `error: config: hotfolder.settleMs must be a whole number from 50 to 600000 (got "soon" from ${path.relative(dir, path.join(dir, 'enhancer.json'))})`,
    ]);
    // A language there is no catalogue for: refused, not quietly English.
    const unknown = new ServiceProcess(dir, { ...withConfig(dir, {}), ENHANCER_HOTFOLDER_LOCALE: 'tlh' });
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.stderr.filter(Boolean)).toEqual(['error: config: hotfolder.locale must be a language there is a catalogue for: en, zh-Hans (got "tlh" from $ENHANCER_HOTFOLDER_LOCALE)']);
  });
});
