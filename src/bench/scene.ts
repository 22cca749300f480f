/**
 * A deterministic, natural-looking test picture (sky gradient, textured ground, soft-edged objects, fine
 * stripes), rendered at twice the size and downscaled so edges are anti-aliased like a camera's. Tests and the
 * benchmark use it instead of shipping photos.
 */
import sharp from 'sharp';

/** Small seeded PRNG (mulberry32). */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fractal value noise in [0,1] over a width x height grid. */
function fbm(width: number, height: number, seed: number, octaves = 5): Float32Array {
  const out = new Float32Array(width * height);
  let amplitude = 0.5;
  let cell = Math.max(width, height) / 4;
  for (let o = 0; o < octaves; o++, amplitude /= 2, cell /= 2) {
    const gw = Math.ceil(width / cell) + 2;
    const gh = Math.ceil(height / cell) + 2;
    const rnd = random(seed * 131 + o);
    const grid = Float32Array.from({ length: gw * gh }, rnd);
    for (let y = 0; y < height; y++) {
      const gy = y / cell;
      const iy = Math.floor(gy);
      const fy = gy - iy;
      const sy = fy * fy * (3 - 2 * fy);
      for (let x = 0; x < width; x++) {
        const gx = x / cell;
        const ix = Math.floor(gx);
        const fx = gx - ix;
        const sx = fx * fx * (3 - 2 * fx);
        const a = grid[iy * gw + ix] + (grid[iy * gw + ix + 1] - grid[iy * gw + ix]) * sx;
        const b = grid[(iy + 1) * gw + ix] + (grid[(iy + 1) * gw + ix + 1] - grid[(iy + 1) * gw + ix]) * sx;
        out[y * width + x] += amplitude * (a + (b - a) * sy);
      }
    }
  }
  return out;
}

/** Renders the scene as 8-bit RGB PNG bytes of `width` x `height`. */
export async function scenePng(width: number, height: number, seed = 7): Promise<Buffer> {
  const W = width * 2;
  const H = height * 2;
  const rgb = new Uint8Array(W * H * 3);
  const texture = fbm(W, H, seed);
  const hills = fbm(W, 1, seed + 1, 4);
  const rnd = random(seed + 2);
  const blobs = Array.from({ length: 6 }, () => ({
    x: rnd() * W,
    y: H * (0.35 + rnd() * 0.55),
    r: (0.05 + rnd() * 0.12) * W,
    c: [rnd() * 255, rnd() * 255, rnd() * 255],
  }));
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const t = texture[y * W + x];
      const horizon = H * (0.35 + 0.2 * hills[x]);
      let c: number[];
      if (y < horizon) {
        const k = y / horizon;
        c = [90 + 80 * k + 30 * t, 140 + 60 * k + 20 * t, 220 - 20 * k];
      } else {
        c = [70 + 120 * t, 110 + 100 * t, 40 + 60 * t];
        // A fence of fine stripes across the ground.
        if (y > H * 0.62 && y < H * 0.7 && Math.floor(x / 5) % 3 === 0) c = [200 - 60 * t, 180 - 60 * t, 150 - 50 * t];
      }
      for (const b of blobs) {
        const d = Math.hypot(x - b.x, y - b.y) - b.r;
        if (d < 1.5) {
          const edge = Math.min(1, Math.max(0, (1.5 - d) / 3));
          const shade = 0.7 + 0.6 * t - (0.3 * (y - b.y)) / b.r;
          c = c.map((v, i) => v * (1 - edge) + b.c[i] * shade * edge);
        }
      }
      const o = (y * W + x) * 3;
      rgb[o] = Math.max(0, Math.min(255, c[0]));
      rgb[o + 1] = Math.max(0, Math.min(255, c[1]));
      rgb[o + 2] = Math.max(0, Math.min(255, c[2]));
    }
  }
  return sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
    .resize(width, height, { kernel: 'lanczos3' })
    .png()
    .toBuffer();
}
