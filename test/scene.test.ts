/**
 * Photo or drawing (src/pipeline/scene.ts) on the labeled set test/scenes/ (LABELS.tsv; credits in its README):
 * 48 images, 26 photos and 22 drawings from 44 distinct source images, PNG and JPEG q60 to q90.
 *
 * Measured on this set (2026-12-06): 47 of 48 right (97.9%); photos 26 of 26, drawings 21 of 22 (95.5%). The one
 * mistake: hands.jpg, a scanned pencil drawing whose paper grain reads as a photo's texture (p(drawing) 0.27).
 * The formula was fitted on this set (and its JPEG re-encodes), so these are training numbers; leaving each source
 * out of the fit in turn gave the same table for these 48 files. The test holds the floor the issue asks for, not
 * the measured 97.9%.
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { readScene, readSceneOf, type Scene, type SceneReading } from '../src/pipeline/scene.js';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), 'scenes');
const SCENES: Scene[] = ['photo', 'drawing'];

interface Labeled {
  file: string;
  scene: Scene;
}

function labels(): Labeled[] {
  const [head, ...rows] = fs.readFileSync(path.join(DIR, 'LABELS.tsv'), 'utf8').trim().split('\n');
  expect(head.split('\t').slice(0, 5)).toEqual(['file', 'scene', 'source', 'licence', 'author']);
  return rows.map((row) => {
    const [file, scene] = row.split('\t');
    if (scene !== 'photo' && scene !== 'drawing') throw new Error(`LABELS.tsv: ${file} has scene "${scene}"`);
    return { file, scene };
  });
}

const read = (file: string): Promise<SceneReading> => readScene(fs.readFileSync(path.join(DIR, file)));

describe('readScene on the labeled set', () => {
  it('tells photos from drawings: 90% overall, no class below 85%', async () => {
    const set = labels();
    expect(set.length).toBeGreaterThanOrEqual(40);
    const table = new Map<string, number>();
    const mistakes: string[] = [];
    let ms = 0;
    for (const { file, scene } of set) {
      const reading = await read(file);
      ms = Math.max(ms, reading.ms);
      table.set(`${scene}->${reading.scene}`, (table.get(`${scene}->${reading.scene}`) ?? 0) + 1);
      if (reading.scene !== scene) {
        const m = reading.measures;
        mistakes.push(`${file}: ${scene} read as ${reading.scene} (p(drawing) ${m.drawing.toFixed(2)}, even ${m.even.toFixed(3)}, texture ${m.texture.toFixed(3)})`);
      }
    }
    const lines = SCENES.map((truth) => `${truth.padEnd(8)} ${SCENES.map((read) => String(table.get(`${truth}->${read}`) ?? 0).padStart(8)).join('')}`);
    console.log([`truth \\ read ${SCENES.map((s) => s.padStart(8)).join('')}`, ...lines, ...mistakes, `slowest reading ${ms.toFixed(1)} ms`].join('\n'));

    const right = SCENES.reduce((sum, s) => sum + (table.get(`${s}->${s}`) ?? 0), 0);
    expect(right / set.length).toBeGreaterThanOrEqual(0.9);
    for (const s of SCENES) {
      const of = set.filter((l) => l.scene === s).length;
      expect((table.get(`${s}->${s}`) ?? 0) / of, s).toBeGreaterThanOrEqual(0.85);
    }
  });

  it('a drawing saved as JPEG q60 is still a drawing', async () => {
    for (const file of ['sylvie-green-q60.jpg', 'horse-q60.jpg']) expect((await read(file)).scene, file).toBe('drawing');
    // And one made here from the lossless sprite, so the claim does not rest on the committed file alone.
    const png = fs.readFileSync(path.join(DIR, 'sylvie-blue.png'));
    const q60 = await sharp(png).jpeg({ quality: 60 }).toBuffer();
    const [lossless, lossy] = [await readScene(png), await readScene(q60)];
    expect([lossless.scene, lossy.scene]).toEqual(['drawing', 'drawing']);
  });

  it('a photo with a big flat sky is still a photo', async () => {
    const sky = await read('rocket-sky.jpg');
    // 43% of it has no curve, nearly as much as an anime sprite (49%), but a sky still slopes: few pixels are even.
    expect(sky.measures.flat).toBeGreaterThan(0.4);
    expect(sky.measures.even).toBeLessThan(0.2);
    expect(sky.scene).toBe('photo');
  });
});

describe('readSceneOf', () => {
  it('reads decoded pixels as readScene reads the file', async () => {
    for (const file of ['cops.jpg', 'emoji-cat.png']) {
      const bytes = fs.readFileSync(path.join(DIR, file));
      const { data, info } = await sharp(bytes).removeAlpha().raw().toBuffer({ resolveWithObject: true });
      const [fromFile, fromPixels] = [await readScene(bytes), await readSceneOf(data, info.width, info.height, 3)];
      expect(fromPixels.scene).toBe(fromFile.scene);
      expect(fromPixels.measures.drawing).toBeCloseTo(fromFile.measures.drawing, 1);
    }
  });

  it('names the size that does not match the pixels', async () => {
    await expect(readSceneOf(new Uint8Array(10), 4, 4, 3)).rejects.toThrow('10 bytes are not 4x4x3');
  });
});

describe('the cost', () => {
  it('reads a 12 MP JPEG in well under a second', async () => {
    // 4000x3000, the size of a phone's photo: sharp decodes a JPEG at 1/8 scale when it is to be shrunk that much.
    // With grain, as a phone's JPEG has: the entropy decoding, which shrinking while decoding does not skip, grows with it.
    const big = await sharp(path.join(DIR, 'cops.jpg')).resize(4000, 3000, { fit: 'fill' }).png().toBuffer();
    const noise = { type: 'gaussian' as const, mean: 0, sigma: 12 };
    const grain = await sharp({ create: { width: 500, height: 500, channels: 3, background: '#000000', noise } }).png().toBuffer();
    const photo = await sharp(big).composite([{ input: grain, blend: 'add', tile: true }]).jpeg({ quality: 92 }).toBuffer();
    const times: number[] = [];
    for (let i = 0; i < 5; i++) times.push((await readScene(photo)).ms);
    times.sort((a, b) => a - b);
    console.log(`12 MP JPEG (${(photo.length / 1e6).toFixed(1)} MB): ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
    // The budget is 150 ms; 45 ms measured (src/pipeline/scene.ts). The bound leaves room for a machine shared with other runs.
    expect(times[2]).toBeLessThan(600);
  });
});
