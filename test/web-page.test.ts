/**
 * The web page a new user meets, in chromium (test/browser.ts). On the real service and x4fast: at first sight a
 * wide, a square and a tall result fit the window with the slider and Download above the fold, on a desktop
 * (1280x800) and a phone (390x844); Actual size is one image pixel per screen pixel; Enhance again keeps every
 * option of the job, the PDF too; no page has a console error or a 404. Cancel, and Enhance again after a job that
 * ended without a result, on an in-process door with the scripted engine, so a job runs exactly as long as the test
 * needs. Screenshots go to $WEB_SHOTS (default <tmp>/enhancer-web-page-shots).
 */
import fs from 'node:fs';
import path from 'node:path';
import type { Browser, BrowserContextOptions, Page, Route } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { modelChoices } from '../adapters/web/language.js';
import type { WebReply } from '../adapters/web/people.js';
import { WebDoor } from '../adapters/web/web.js';
import { EnhanceError } from '../src/errors.js';
import { silentLogger } from '../src/log.js';
import { readManifest } from '../src/models/manifest.js';
import { DEFAULT_MODELS_DIR } from '../src/paths.js';
import type { JobOf } from '../src/service/door.js';
import { enhanceProcessor } from '../src/pipeline/process.js';
import { LocalQueue } from '../src/queue/local-queue.js';
import { Worker } from '../src/queue/worker.js';
import { haveChromium, launchChromium, shotsDir, watchProblems } from './browser.js';
import { scenePng, tempDir } from './helpers.js';
import { ScriptedEngine } from './scripted-engine.js';
import { splitLink, startWeb, upload, type WebService } from './web-service.js';
import { requestChecks } from '../src/pipeline/admission.js';

interface Screen {
  name: string;
  options: BrowserContextOptions;
}
const DESKTOP: Screen = { name: 'desktop', options: { viewport: { width: 1280, height: 800 }, deviceScaleFactor: 1 } };
// A phone at twice the density: at three times, all three results would fit at one image pixel per screen pixel
// (1024 / 3 = 341 px), and only that limit would be tested, not the fitting to the screen.
const PHONE: Screen = { name: 'phone', options: { viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true } };
/** The inputs, by shape; x4fast makes them 1024x256, 512x512 and 480x960. */
const SHAPES = [
  { shape: 'wide', width: 256, height: 64 },
  { shape: 'square', width: 128, height: 128 },
  { shape: 'tall', width: 120, height: 240 },
];

let SHOTS: string;
let browser: Browser;

beforeAll(async () => {
  if (!haveChromium) return;
  SHOTS = shotsDir('enhancer-web-page-shots');
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

/** Waits until the job behind `link` has ended: the server ends its event stream then. */
async function ended(base: string, link: string): Promise<void> {
  const { path: p, query } = splitLink(link);
  await (await fetch(`${base}${p}/events?${query}`)).text();
}

type Box = { top: number; bottom: number; left: number; right: number; width: number; height: number };
/** Where the picture, the slider and the PNG download are in the window, and the window's own size. */
function sight(page: Page) {
  return page.evaluate(() => {
    const box = (id: string): Box => {
      const { top, bottom, left, right, width, height } = document.getElementById(id)!.getBoundingClientRect();
      return { top, bottom, left, right, width, height };
    };
    const after = document.getElementById('after') as HTMLImageElement;
    const viewport = document.getElementById('viewport')!;
    return {
      window: { width: window.innerWidth, height: window.innerHeight, scrollY: window.scrollY, dpr: window.devicePixelRatio },
      natural: { width: after.naturalWidth, height: after.naturalHeight },
      room: document.getElementById('result')!.clientWidth,
      scrolls: { x: viewport.scrollWidth > viewport.clientWidth, y: viewport.scrollHeight > viewport.clientHeight },
      after: box('after'),
      slider: box('slider'),
      download: box('download-png'),
    };
  });
}

/** Expects each of `parts` of `seen` to lie wholly within the window. */
function expectInWindow(seen: Awaited<ReturnType<typeof sight>>, parts: Array<'after' | 'slider' | 'download'>, label: string): void {
  for (const part of parts) {
    const b = seen[part];
    const where = `${label}: ${part} at ${Math.round(b.left)},${Math.round(b.top)} to ${Math.round(b.right)},${Math.round(b.bottom)} in ${seen.window.width}x${seen.window.height}`;
    expect(b.top, where).toBeGreaterThanOrEqual(0);
    expect(b.left, where).toBeGreaterThanOrEqual(0);
    expect(b.right, where).toBeLessThanOrEqual(seen.window.width);
    expect(b.bottom, where).toBeLessThanOrEqual(seen.window.height);
  }
}

describe('the models as the page names them', () => {
  it('by use, in each language; one the catalogue does not know goes by its name, its description as its architecture', async () => {
    const models = [
      { name: 'x4plus', description: 'RealESRGAN x4plus (RRDBNet, 23 blocks): general photos, best quality' },
      { name: 'my-own', description: 'My own net (RRDBNet, 8 blocks)' },
    ];
    expect(modelChoices('en', models)).toEqual([
      { name: 'x4plus', label: 'Photos, best quality', architecture: 'RealESRGAN x4plus (RRDBNet, 23 blocks)' },
      { name: 'my-own', label: 'my-own', architecture: 'My own net (RRDBNet, 8 blocks)' },
    ]);
    expect(modelChoices('zh-Hans', models)[0]).toEqual({ name: 'x4plus', label: '照片，最佳质量', architecture: 'RealESRGAN x4plus（RRDBNet，23 个块）' });
    const shipped = (await readManifest(DEFAULT_MODELS_DIR)).models;
    expect(modelChoices('en', shipped).map((m) => m.label)).toEqual(['Photos, best quality', 'Photos, fast', 'Drawings, best', 'Drawings, fast']);
    expect(modelChoices('zh-Hans', shipped).map((m) => m.label)).toEqual(['照片，最佳质量', '照片，快速', '绘画，最佳', '绘画，快速']);
  });
});

describe.skipIf(!haveChromium)('the job page on the real service', () => {
  let dir: string;
  let running: WebService;
  /** Each shape's job link. */
  const links: Record<string, string> = {};

  beforeAll(async () => {
    dir = tempDir('enhancer-web-page-');
    running = await startWeb(dir);
    const files = await Promise.all(SHAPES.map(async (s, i) => ({ name: `${s.shape}.png`, bytes: await scenePng(s.width, s.height, i + 1) })));
    // The model named: an upload without one runs x4plus, whatever the service's model (see the report of this branch).
    const { body } = await upload(running.base, files, { model: 'x4fast' });
    for (const [i, job] of body.jobs!.entries()) links[SHAPES[i].shape] = job.link!;
    for (const link of Object.values(links)) await ended(running.base, link);
  });
  afterAll(async () => {
    await running?.service.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  for (const screen of [DESKTOP, PHONE]) {
    it(`on a ${screen.name}: the whole of a wide, a square and a tall result at first sight, the slider and Download under it; Actual size is one image pixel per screen pixel`, async () => {
      const context = await browser.newContext(screen.options);
      try {
        for (const { shape } of SHAPES) {
          const label = `${shape} on a ${screen.name}`;
          const page = await context.newPage();
          const problems = watchProblems(page);
          await page.goto(`${running.base}${links[shape]}`);
          await page.locator('#result').waitFor({ state: 'visible' });
          await expect.poll(() => page.locator('#after').evaluate((img: HTMLImageElement) => img.naturalWidth)).toBeGreaterThan(0);
          const first = await sight(page);
          await page.screenshot({ path: path.join(SHOTS, `${shape}-${screen.name}.png`) });
          expect(first.window.scrollY).toBe(0);
          expectInWindow(first, ['after', 'slider', 'download'], label);
          // Never enlarged past one image pixel per screen pixel, the shape kept, and as large as the room allows:
          // at that size, or as wide as the page, or as tall as leaves the downloads just above the fold.
          const full = first.natural.width / first.window.dpr;
          expect(first.after.width, label).toBeLessThanOrEqual(full + 0.5);
          expect(first.after.height / first.after.width, label).toBeCloseTo(first.natural.height / first.natural.width, 1);
          const asLarge = first.after.width >= full - 1 || first.after.width >= first.room - 4 || first.download.bottom >= first.window.height - 24;
          expect(asLarge, `${label}: ${JSON.stringify(first)}`).toBe(true);

          await page.getByRole('button', { name: 'Actual size' }).click();
          const actual = await sight(page);
          await page.screenshot({ path: path.join(SHOTS, `${shape}-${screen.name}-actual.png`) });
          expect(actual.after.width, label).toBeCloseTo(actual.natural.width / actual.window.dpr, 1);
          expect(actual.after.height, label).toBeCloseTo(actual.natural.height / actual.window.dpr, 1);
          // Larger than its frame: scrolled inside it, and the slider and Download stay in sight.
          if (actual.after.width > actual.room) expect(actual.scrolls.x, label).toBe(true);
          expectInWindow(actual, ['slider', 'download'], `${label}, actual size`);
          expect(await page.locator('#zoom').textContent()).toBe('Fit to screen');
          await page.getByRole('button', { name: 'Fit to screen' }).click();
          expect((await sight(page)).after).toEqual(first.after);
          expect(problems, label).toEqual([]);
          await page.close();
        }
      } finally {
        await context.close();
      }
    }, 120_000);
  }

  it('Enhance again is set to every option of the job, the PDF too, and sends what the upload form sent', async () => {
    const context = await browser.newContext(DESKTOP.options);
    // What the pages send: the fields of each upload (its files left out) and each JSON body, as the server gets them.
    await context.addInitScript(() => {
      const sent: Array<Record<string, unknown>> = [];
      (window as unknown as { sent: typeof sent }).sent = sent;
      const send = window.fetch.bind(window);
      window.fetch = (input, init) => {
        const body = init?.body;
        if (body instanceof FormData) sent.push(Object.fromEntries([...body].filter(([, v]) => typeof v === 'string')));
        else if (typeof body === 'string') sent.push(JSON.parse(body) as Record<string, unknown>);
        return send(input, init);
      };
    });
    const sentBy = (page: Page) => page.evaluate(() => (window as unknown as { sent: Array<Record<string, unknown>> }).sent);
    try {
      const page = await context.newPage();
      const problems = watchProblems(page);
      await page.goto(running.base);
      await page.locator('#scale').selectOption('2');
      await page.locator('#tune').selectOption('raw');
      await page.locator('#pdf').check();
      await page.setInputFiles('#files', [{ name: 'options.png', mimeType: 'image/png', buffer: await scenePng(64, 48, 9) }]);
      await page.getByRole('button', { name: 'Enhance', exact: true }).click();
      const link = await page.locator('#jobs li').first().getAttribute('data-link');
      const [fields] = await sentBy(page);
      expect(fields).toEqual({ model: 'x4fast', scale: '2', size: '', format: 'png', tune: 'raw', pdf: 'on', ask: 'on' });

      const job = await context.newPage();
      problems.push(...watchProblems(job));
      await job.goto(`${running.base}${link}`);
      await job.locator('#again-form').waitFor({ state: 'visible', timeout: 60_000 });
      expect(await job.locator('#again-model').inputValue()).toBe('x4fast');
      // Named by use: the choice says what the model is for; the summary says what it is.
      expect(await job.locator('#again-model option:checked').textContent()).toBe('Photos, fast');
      expect(await job.locator('#again-scale').inputValue()).toBe('2');
      expect(await job.locator('#again-format').inputValue()).toBe('png');
      expect(await job.locator('#again-tune').inputValue()).toBe('raw');
      expect(await job.locator('#again-pdf').isChecked()).toBe(true);
      const summary = await job.locator('#summary').innerText();
      expect(summary).toMatch(/Photos, fast, no touch-up: RealESRGAN x4 compact \(SRVGGNet, 32 convolutions\), model file sha256 [0-9a-f]{12}…/);
      expect(summary).not.toMatch(/\bruns\)|infer\b/);
      await job.screenshot({ path: path.join(SHOTS, 'again-prefilled-desktop.png'), fullPage: true });

      await job.getByRole('button', { name: 'Enhance again' }).click();
      await expect.poll(() => job.locator('#again-status').textContent(), { timeout: 60_000 }).toBe('Done: the result above is the new one');
      // The upload asks before a long job (ask=on); Enhance again, pressed on a job already seen, does not.
      const { ask: _ask, ...again } = fields;
      expect(await sentBy(job)).toEqual([again]);
      expect(await job.locator('#download-pdf').isVisible()).toBe(true);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 180_000);

  it('no console error and no 404 on the upload page, a job page, a forged link and a download; the icon is there', async () => {
    const { path: p, query } = splitLink(links.square);
    const pages = { upload: '/', job: links.square, forged: `${p}?e=${splitLink(links.square).expires}&s=${'A'.repeat(43)}`, download: `${p}/file/result?${query}` };
    for (const [name, route] of Object.entries(pages)) {
      // A fresh browser each time: chromium asks for a site's icon once and keeps the answer.
      const context = await browser.newContext(DESKTOP.options);
      try {
        const page = await context.newPage();
        const problems = watchProblems(page);
        // Every page names its icon; chromium asks for none when it shows a picture itself (the download).
        const icon = name === 'download' ? undefined : page.waitForResponse((r) => r.url().endsWith('/static/favicon.svg'));
        await page.goto(`${running.base}${route}`);
        if (icon) {
          expect((await icon).status(), name).toBe(200);
          await page.screenshot({ path: path.join(SHOTS, `plain-${name}-desktop.png`) });
        }
        // Chromium shows a picture with inline styles of its own, which the door's strict CSP refuses (three console
        // lines, and the picture still shows): only its network answers are checked there.
        expect(name === 'download' ? problems.filter((p) => !p.startsWith('console: ')) : problems, name).toEqual([]);
      } finally {
        await context.close();
      }
    }
    const ico = await fetch(`${running.base}/favicon.ico`);
    expect([ico.status, ico.headers.get('content-type')]).toEqual([200, 'image/svg+xml']);
    expect(await ico.text()).toMatch(/^<svg /);
  }, 120_000);
});

describe.skipIf(!haveChromium)('Cancel, and Enhance again after a job that ended without a result', () => {
  let dir: string;
  let engine: ScriptedEngine;
  let base: string;
  let close: () => Promise<void>;

  // The door, queue and worker in this process, on the scripted engine: a job runs until the test ends it.
  beforeEach(async () => {
    dir = tempDir('enhancer-web-page-');
    engine = new ScriptedEngine();
    const config = { port: 0, host: '127.0.0.1', hosts: [], accessKeys: [], open: false, keepFor: 3_600_000, keepBytes: 1e9, uploadsPerMinute: 1000, publicUrl: '' };
    const limits = { maxFileBytes: 5_000_000, maxPixels: 1_000_000 };
    let door: WebDoor | undefined = undefined;
    const queue = new LocalQueue({ dataDir: path.join(dir, 'data'), checks: requestChecks({ defaults: { model: 'x4fast' }, ...limits }), deliver: (job, outcome) => door!.deliver(job as JobOf<WebReply>, outcome) });
    door = new WebDoor({ queue, config, stateDir: path.join(dir, 'web'), ...limits, queuedPerOwner: 10, defaultModel: 'x4fast', modelsDir: DEFAULT_MODELS_DIR, logger: silentLogger });
    await door.start();
    const worker = new Worker(queue, enhanceProcessor({ engine }));
    worker.run();
    base = door.url.replace(/\/$/, '');
    close = async () => {
      await worker.close(0);
      await queue.close(100);
      await door.stop();
    };
  });
  afterEach(async () => {
    await close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('Cancel says "Cancelling…" before the server has answered, then the job is shown cancelled and runs again from its kept upload', async () => {
    const { body } = await upload(base, [{ name: 'cancel-me.png', bytes: await scenePng(96, 64, 4) }], { scale: '3', tune: 'raw', pdf: 'on' });
    const link = body.jobs![0].link!;
    const context = await browser.newContext(PHONE.options);
    try {
      const page = await context.newPage();
      const problems = watchProblems(page);
      const started = engine.next();
      await page.goto(`${base}${link}`);
      await started;
      await page.waitForFunction(() => /^Running/.test(document.getElementById('status')!.textContent!));
      // The cancel is held in the browser, so what the page says now it says before the server has it.
      let held!: (route: Route) => void;
      const cancel = new Promise<Route>((resolve) => (held = resolve));
      await page.route((url) => url.pathname.endsWith('/cancel'), (route) => held(route));
      await page.getByRole('button', { name: 'Cancel' }).click();
      const route = await cancel;
      expect(await page.locator('#cancel').textContent()).toBe('Cancelling…');
      expect(await page.locator('#cancel').isDisabled()).toBe(true);
      expect(await page.locator('#status').textContent()).toBe('Cancelling…');
      await page.screenshot({ path: path.join(SHOTS, 'cancelling-phone.png') });
      await route.continue();

      await page.locator('#again-form').waitFor({ state: 'visible' });
      expect(await page.locator('#status').textContent()).toBe('Cancelled');
      expect(await page.locator('#reason').textContent()).toBe('cancelled by its owner');
      expect(await page.locator('#cancel').isVisible()).toBe(false);
      expect(await page.locator('#result').isVisible()).toBe(false);
      expect([await page.locator('#again-model').inputValue(), await page.locator('#again-scale').inputValue(), await page.locator('#again-tune').inputValue()]).toEqual(['x4fast', '3', 'raw']);
      expect(await page.locator('#again-pdf').isChecked()).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, 'cancelled-phone.png'), fullPage: true });

      // Enhance again: the new job's own page, where it runs to its result (every run of it let through at once).
      engine.auto = true;
      await Promise.all([page.waitForURL((url) => url.pathname !== splitLink(link).path), page.getByRole('button', { name: 'Enhance again' }).click()]);
      await page.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
      expect(await page.locator('#status').textContent()).toBe('Done');
      expect(await page.locator('#download-png').textContent()).toMatch(/^Download PNG \(288x192, \d+ KB\)$/);
      expect(await page.locator('#download-pdf').isVisible()).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, 'cancelled-then-again-phone.png') });
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);

  it('a failed job offers Enhance again too, set to its options; a PDF unticked there is not made', async () => {
    const { body } = await upload(base, [{ name: 'fails.png', bytes: await scenePng(64, 64, 5) }], { scale: '2', pdf: 'on' });
    const link = body.jobs![0].link!;
    const context = await browser.newContext(DESKTOP.options);
    try {
      const page = await context.newPage();
      const problems = watchProblems(page);
      await page.goto(`${base}${link}`);
      (await engine.next()).fail(new EnhanceError({ key: 'reason.damaged' }, 'input'));
      await page.locator('#again-form').waitFor({ state: 'visible' });
      expect(await page.locator('#status').textContent()).toBe('Failed');
      expect(await page.locator('#reason').textContent()).toBe('the file is damaged or incomplete: send it again, or export it anew');
      expect(await page.locator('#again-scale').inputValue()).toBe('2');
      expect(await page.locator('#again-pdf').isChecked()).toBe(true);
      await page.screenshot({ path: path.join(SHOTS, 'failed-desktop.png') });
      // "Again" keeps each option of the job it is not told: the untick must be said, or the job's PDF would stay.
      await page.locator('#again-pdf').uncheck();
      engine.auto = true;
      await Promise.all([page.waitForURL((url) => url.pathname !== splitLink(link).path), page.getByRole('button', { name: 'Enhance again' }).click()]);
      await page.locator('#result').waitFor({ state: 'visible', timeout: 60_000 });
      expect(await page.locator('#download-png').textContent()).toMatch(/^Download PNG \(128x128, \d+ KB\)$/);
      expect(await page.locator('#download-pdf').isVisible()).toBe(false);
      expect(await page.locator('#again-pdf').isChecked()).toBe(false);
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  }, 60_000);
});
