/**
 * Float64 references of the Llama family's rotary embeddings and grouped-query attention, the
 * math of workers/kernels/train/rope.ts and gqa.ts, in plain TypeScript:
 *
 *   ropeForward / ropeBackward   HF's rotate_half rotation of every head of every row, and its
 *                                transpose (the rotation by −θ), with tables [positions, D/2]
 *                                (workers/models/llama/rope.ts ropeTables).
 *   gqaPack / gqaUnpack          q [N, H·D], k and v [N, Hkv·D] ↔ the packed qkv [N, 3·H·D] of
 *                                the attention kernels, query head h reading KV head
 *                                floor(h / (H / Hkv)); the unpack sums each group's gradients.
 *   gqaAttentionForward/Backward causal attention with a key mask on separate q, k, v with GQA:
 *                                gqaPack, then test/reference/attention.ts, then gqaUnpack.
 *
 * Layouts row-major: a row is one token (N = B·T rows), head h at columns h·D..(h+1)·D.
 */
import { attentionBackwardReference, attentionForwardReference } from './attention';

export interface RopeTables {
  /** cos(p·inv_freq[i]) at p·D/2 + i, [positions, D/2]. */
  cos: ArrayLike<number>;
  sin: ArrayLike<number>;
}

export interface RopeDims {
  rows: number;
  heads: number;
  /** D, even; the tables have D/2 columns. */
  headDim: number;
}

export interface GqaDims {
  rows: number;
  /** H query heads. */
  heads: number;
  /** Hkv key/value heads, dividing H. */
  kvHeads: number;
  headDim: number;
}

export interface GqaAttentionDims {
  batch: number;
  seq: number;
  heads: number;
  kvHeads: number;
  headDim: number;
}

function checkRope(x: ArrayLike<number>, positions: ArrayLike<number>, tables: RopeTables, dims: RopeDims, what: string): number {
  const { rows, heads, headDim: D } = dims;
  if (D % 2 !== 0) throw new Error(`${what}: headDim = ${D} must be even`);
  if (x.length !== rows * heads * D) throw new Error(`${what}: x has ${x.length} values, expected rows·heads·headDim = ${rows * heads * D}`);
  if (positions.length < rows) throw new Error(`${what}: ${positions.length} positions for ${rows} rows`);
  const half = D / 2;
  const maxPositions = tables.cos.length / half;
  for (let r = 0; r < rows; r++) {
    const p = positions[r];
    if (!Number.isInteger(p) || p < 0 || p >= maxPositions) throw new Error(`${what}: position ${p} of row ${r} is outside the tables' 0…${maxPositions - 1}`);
  }
  return half;
}

/**
 * HF's apply_rotary_pos_emb on one tensor: for each row r (position p = positions[r]), head and
 * i < D/2, with c = cos[p, i], s = sin[p, i]:
 *   y[i] = x[i]·c − x[i + D/2]·s,   y[i + D/2] = x[i + D/2]·c + x[i]·s.
 */
export function ropeForward(x: ArrayLike<number>, positions: ArrayLike<number>, tables: RopeTables, dims: RopeDims): Float64Array {
  return rotate(x, positions, tables, dims, 1, 'ropeForward');
}

/**
 * The gradient of ropeForward: the transpose of each 2×2 rotation (the rotation by −θ),
 *   dx[i] = dy[i]·c + dy[i + D/2]·s,   dx[i + D/2] = dy[i + D/2]·c − dy[i]·s.
 */
export function ropeBackward(dy: ArrayLike<number>, positions: ArrayLike<number>, tables: RopeTables, dims: RopeDims): Float64Array {
  return rotate(dy, positions, tables, dims, -1, 'ropeBackward');
}

function rotate(x: ArrayLike<number>, positions: ArrayLike<number>, tables: RopeTables, dims: RopeDims, sign: 1 | -1, what: string): Float64Array {
  const half = checkRope(x, positions, tables, dims, what);
  const { rows, heads, headDim: D } = dims;
  const y = new Float64Array(rows * heads * D);
  for (let r = 0; r < rows; r++) {
    const t = positions[r] * half;
    for (let h = 0; h < heads; h++) {
      const o = (r * heads + h) * D;
      for (let i = 0; i < half; i++) {
        const c = tables.cos[t + i];
        const s = sign * tables.sin[t + i];
        const a = x[o + i];
        const b = x[o + i + half];
        y[o + i] = a * c - b * s;
        y[o + i + half] = b * c + a * s;
      }
    }
  }
  return y;
}

function checkGqa(dims: GqaDims, what: string): number {
  const { heads, kvHeads } = dims;
  if (!Number.isInteger(heads / kvHeads) || kvHeads < 1) throw new Error(`${what}: kvHeads = ${kvHeads} must divide heads = ${heads}`);
  return heads / kvHeads;
}

/** qkv [N, 3·H·D] = q | k expanded | v expanded per row: head h of k and v is KV head floor(h / (H/Hkv)). */
export function gqaPack(q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>, dims: GqaDims): Float64Array {
  const group = checkGqa(dims, 'gqaPack');
  const { rows: N, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const E = H * D;
  const Ekv = Hkv * D;
  if (q.length !== N * E || k.length !== N * Ekv || v.length !== N * Ekv) throw new Error(`gqaPack: q, k, v have ${q.length}, ${k.length}, ${v.length} values, expected ${N * E}, ${N * Ekv}, ${N * Ekv}`);
  const qkv = new Float64Array(N * 3 * E);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / group);
      for (let d = 0; d < D; d++) {
        qkv[n * 3 * E + h * D + d] = q[n * E + h * D + d];
        qkv[n * 3 * E + E + h * D + d] = k[n * Ekv + kv * D + d];
        qkv[n * 3 * E + 2 * E + h * D + d] = v[n * Ekv + kv * D + d];
      }
    }
  }
  return qkv;
}

/** The gradient of gqaPack: dq the q section; dk, dv each KV head's sum over its group of query heads. */
export function gqaUnpack(dqkv: ArrayLike<number>, dims: GqaDims): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const group = checkGqa(dims, 'gqaUnpack');
  const { rows: N, heads: H, kvHeads: Hkv, headDim: D } = dims;
  const E = H * D;
  const Ekv = Hkv * D;
  if (dqkv.length !== N * 3 * E) throw new Error(`gqaUnpack: dqkv has ${dqkv.length} values, expected ${N * 3 * E}`);
  const dq = new Float64Array(N * E);
  const dk = new Float64Array(N * Ekv);
  const dv = new Float64Array(N * Ekv);
  for (let n = 0; n < N; n++) {
    for (let h = 0; h < H; h++) {
      const kv = Math.floor(h / group);
      for (let d = 0; d < D; d++) {
        dq[n * E + h * D + d] = dqkv[n * 3 * E + h * D + d];
        dk[n * Ekv + kv * D + d] += dqkv[n * 3 * E + E + h * D + d];
        dv[n * Ekv + kv * D + d] += dqkv[n * 3 * E + 2 * E + h * D + d];
      }
    }
  }
  return { dq, dk, dv };
}

const gqaDims = (dims: GqaAttentionDims): GqaDims => ({ rows: dims.batch * dims.seq, heads: dims.heads, kvHeads: dims.kvHeads, headDim: dims.headDim });
const attentionDims = (dims: GqaAttentionDims) => ({ batch: dims.batch, seq: dims.seq, heads: dims.heads, headDim: dims.headDim });

/**
 * Causal GQA attention with a key mask (attentionForwardReference's semantics: padding queries
 * get zero ctx and probs): q [B·T, H·D], k and v [B·T, Hkv·D], keyMask [B·T] → ctx [B·T, H·D],
 * probs [B, H, T, T], and the packed qkv it attended over.
 */
export function gqaAttentionForward(
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  keyMask: ArrayLike<number>,
  dims: GqaAttentionDims,
): { ctx: Float64Array; probs: Float64Array; qkv: Float64Array } {
  const qkv = gqaPack(q, k, v, gqaDims(dims));
  const { ctx, probs } = attentionForwardReference(qkv, keyMask, attentionDims(dims));
  return { ctx, probs, qkv };
}

/**
 * The gradient of gqaAttentionForward: dctx [B·T, H·D] and the forward's probs → dq [B·T, H·D],
 * dk and dv [B·T, Hkv·D] (the key mask acts through probs, as in attentionBackwardReference).
 */
export function gqaAttentionBackward(
  dctx: ArrayLike<number>,
  probs: ArrayLike<number>,
  q: ArrayLike<number>,
  k: ArrayLike<number>,
  v: ArrayLike<number>,
  dims: GqaAttentionDims,
): { dq: Float64Array; dk: Float64Array; dv: Float64Array } {
  const qkv = gqaPack(q, k, v, gqaDims(dims));
  return gqaUnpack(attentionBackwardReference(dctx, probs, qkv, attentionDims(dims)), gqaDims(dims));
}
