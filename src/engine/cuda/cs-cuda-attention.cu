/* cs-cuda-attention.cu: multi-head self-attention of packed sequences for SMALL head dims
 * (<= 64; the presets use 8), forward and backward, softmax fused, no T x T matrix stored.
 *
 * Work is cut per sequence: block (x, h) takes one tile of BQ = NT x QPT consecutive
 * tokens of one sequence (seq_tile finds which from seq_off/seq_len, in device memory; no
 * assumption on their order) and head h, so a block's threads share one key range and
 * never idle over another sequence's keys. Each thread holds QPT tokens (t0 + tid + i NT),
 * which reuses every key it reads from shared memory QPT times. Keys (or, for dk/dv,
 * queries) are staged NT at a time in shared memory. Head dims are zero-padded to HDP (8,
 * 16, 32 or 64), so the padded channels add exact zeros to every dot product. Scores are
 * kept in base 2 (q is scaled by scale x log2 e once), so each probability is one exp2.
 *   forward:  online softmax over chunks of CH keys: the chunk's scores, their maximum, one
 *             rescale of the running sum and accumulator per chunk (no branch per key);
 *             lse = ln 2 (m + log2 l), natural log as the CPU backend's.
 *   backward: probabilities recomputed from lse (flash-attention style), D_i = dO_i . o_i;
 *             one kernel per query gives dq, one per key gives dk and dv, so every output
 *             element has exactly one writer: no atomics, deterministic. */
#include "cs-cuda-common.cuh"

#include <math.h>

#define CS_LOG2E 1.4426950408889634f
#define CS_LN2 0.6931471805599453f

/* block b's tile: the sequence [*s0, *s1) and its first token *t0, taking the sequences'
 * tiles of bq tokens one after the other; FALSE past the last tile (block-uniform) */
static __device__ __forceinline__ bool
seq_tile (const int *seq_off, const int *seq_len, int n_seq, int bq, int b, int *s0, int *s1,
          int *t0)
{
  for (int s = 0; s < n_seq; s++)
    {
      const int len = seq_len[s], tiles = len > 0 ? (len + bq - 1) / bq : 0;
      if (b < tiles)
        {
          *s0 = seq_off[s];
          *s1 = *s0 + len;
          *t0 = *s0 + b * bq;
          return true;
        }
      b -= tiles;
    }
  return false;
}

/* row[HDP] = mul x channels base .. base+hd-1 of row r of a [*, stride] matrix, zero-padded */
template <int HDP>
static __device__ __forceinline__ void
load_row (float *row, const float *m, int stride, int base, int r, int hd, bool valid,
          float mul = 1.0f)
{
#pragma unroll
  for (int d = 0; d < HDP; d++)
    row[d] = valid && d < hd ? mul * m[(size_t) r * stride + base + d] : 0.0f;
}

/* channels base .. base+hd-1 of row r of a [*, stride] matrix: = (add: +=) mul x row */
template <int HDP>
static __device__ __forceinline__ void
store_row (float *m, int stride, int base, int r, int hd, const float *row, float mul, bool add)
{
  float *dst = m + (size_t) r * stride + base;
#pragma unroll
  for (int d = 0; d < HDP; d++)
    if (d < hd)
      dst[d] = (add ? dst[d] : 0.0f) + mul * row[d];
}

template <int HDP>
static __device__ __forceinline__ float
dot_row (const float *a, const float *b)
{
  float s = 0.0f;
#pragma unroll
  for (int d = 0; d < HDP; d++)
    s += a[d] * b[d];
  return s;
}

template <int HDP, int NT, int QPT>
static __global__ void __launch_bounds__ (NT)
attention_forward_kernel (float *out, float *lse, const float *qkv, const int *seq_off,
                          const int *seq_len, int n_seq, int T, int C, int hd, float scale)
{
  constexpr int CH = 8; /* keys per online-softmax step; NT is a multiple of it */
  __shared__ float ks[NT][HDP];
  __shared__ float vs[NT][HDP];
  const int h = blockIdx.y, C3 = 3 * C;
  int s0, s1, t0;
  float q[QPT][HDP], acc[QPT][HDP], m[QPT], l[QPT];

  if (!seq_tile (seq_off, seq_len, n_seq, NT * QPT, blockIdx.x, &s0, &s1, &t0))
    return;
#pragma unroll
  for (int i = 0; i < QPT; i++)
    {
      const int t = t0 + threadIdx.x + i * NT;
      load_row<HDP> (q[i], qkv, C3, h * hd, t, hd, t < s1, scale * CS_LOG2E);
#pragma unroll
      for (int d = 0; d < HDP; d++)
        acc[i][d] = 0.0f;
      m[i] = -INFINITY;
      l[i] = 0.0f;
    }

  for (int k0 = s0; k0 < s1; k0 += NT)
    {
      const int kt = k0 + threadIdx.x, nk = min (NT, s1 - k0);
      __syncthreads (); /* the previous tile is consumed */
      load_row<HDP> (ks[threadIdx.x], qkv, C3, C + h * hd, kt, hd, kt < s1);
      load_row<HDP> (vs[threadIdx.x], qkv, C3, 2 * C + h * hd, kt, hd, kt < s1);
      __syncthreads ();
      for (int c = 0; c < nk; c += CH)
        {
#pragma unroll
          for (int i = 0; i < QPT; i++)
            {
              float s[CH], mx = -INFINITY;
#pragma unroll
              for (int j = 0; j < CH; j++)
                {
                  s[j] = c + j < nk ? dot_row<HDP> (q[i], ks[c + j]) : -INFINITY;
                  mx = fmaxf (mx, s[j]);
                }
              /* mx is finite: the chunk holds at least one key */
              const float mnew = fmaxf (m[i], mx), corr = exp2f (m[i] - mnew);
              l[i] *= corr;
#pragma unroll
              for (int d = 0; d < HDP; d++)
                acc[i][d] *= corr;
              m[i] = mnew;
#pragma unroll
              for (int j = 0; j < CH; j++)
                {
                  const float p = exp2f (s[j] - mnew);
                  l[i] += p;
#pragma unroll
                  for (int d = 0; d < HDP; d++)
                    acc[i][d] += p * vs[c + j][d];
                }
            }
        }
    }
#pragma unroll
  for (int i = 0; i < QPT; i++)
    {
      const int t = t0 + threadIdx.x + i * NT;
      if (t >= s1)
        continue;
      store_row<HDP> (out, C, h * hd, t, hd, acc[i], 1.0f / l[i], false);
      lse[(size_t) h * T + t] = CS_LN2 * (m[i] + log2f (l[i]));
    }
}

/* dq of each query: sum_j ds_ij k_j * scale, ds_ij = p_ij (dO_i . v_j - D_i) */
template <int HDP, int NT, int QPT>
static __global__ void __launch_bounds__ (NT)
attention_backward_dq_kernel (float *dqkv, const float *dout, const float *qkv,
                              const float *out, const float *lse, const int *seq_off,
                              const int *seq_len, int n_seq, int T, int C, int hd, float scale)
{
  __shared__ float ks[NT][HDP];
  __shared__ float vs[NT][HDP];
  const int h = blockIdx.y, C3 = 3 * C;
  int s0, s1, t0;
  float q[QPT][HDP], g[QPT][HDP], dq[QPT][HDP], D[QPT], L[QPT];

  if (!seq_tile (seq_off, seq_len, n_seq, NT * QPT, blockIdx.x, &s0, &s1, &t0))
    return;
#pragma unroll
  for (int i = 0; i < QPT; i++)
    {
      const int t = t0 + threadIdx.x + i * NT;
      const bool valid = t < s1;
      float o[HDP];
      load_row<HDP> (q[i], qkv, C3, h * hd, t, hd, valid, scale * CS_LOG2E);
      load_row<HDP> (g[i], dout, C, h * hd, t, hd, valid);
      load_row<HDP> (o, out, C, h * hd, t, hd, valid);
      D[i] = dot_row<HDP> (g[i], o);
      L[i] = valid ? lse[(size_t) h * T + t] * CS_LOG2E : 0.0f;
#pragma unroll
      for (int d = 0; d < HDP; d++)
        dq[i][d] = 0.0f;
    }

  for (int k0 = s0; k0 < s1; k0 += NT)
    {
      const int kt = k0 + threadIdx.x, nk = min (NT, s1 - k0);
      __syncthreads ();
      load_row<HDP> (ks[threadIdx.x], qkv, C3, C + h * hd, kt, hd, kt < s1);
      load_row<HDP> (vs[threadIdx.x], qkv, C3, 2 * C + h * hd, kt, hd, kt < s1);
      __syncthreads ();
      for (int j = 0; j < nk; j++)
        {
#pragma unroll
          for (int i = 0; i < QPT; i++)
            {
              const float p = exp2f (dot_row<HDP> (q[i], ks[j]) - L[i]);
              const float ds = p * (dot_row<HDP> (g[i], vs[j]) - D[i]);
#pragma unroll
              for (int d = 0; d < HDP; d++)
                dq[i][d] += ds * ks[j][d];
            }
        }
    }
#pragma unroll
  for (int i = 0; i < QPT; i++)
    {
      const int t = t0 + threadIdx.x + i * NT;
      if (t < s1)
        store_row<HDP> (dqkv, C3, h * hd, t, hd, dq[i], scale, true);
    }
}

/* dk, dv of each key: dv_j = sum_i p_ij dO_i, dk_j = sum_i ds_ij q_i * scale; the staged
 * queries are scaled by scale x log2 e, so dk is divided by log2 e at the end */
template <int HDP, int NT, int KPT>
static __global__ void __launch_bounds__ (NT)
attention_backward_dkv_kernel (float *dqkv, const float *dout, const float *qkv,
                               const float *out, const float *lse, const int *seq_off,
                               const int *seq_len, int n_seq, int T, int C, int hd, float scale)
{
  __shared__ float qs[NT][HDP];
  __shared__ float gs[NT][HDP];
  __shared__ float Ls[NT];
  __shared__ float Ds[NT];
  const int h = blockIdx.y, C3 = 3 * C;
  int s0, s1, t0;
  float k[KPT][HDP], v[KPT][HDP], dk[KPT][HDP], dv[KPT][HDP];

  if (!seq_tile (seq_off, seq_len, n_seq, NT * KPT, blockIdx.x, &s0, &s1, &t0))
    return;
#pragma unroll
  for (int i = 0; i < KPT; i++)
    {
      const int t = t0 + threadIdx.x + i * NT;
      load_row<HDP> (k[i], qkv, C3, C + h * hd, t, hd, t < s1);
      load_row<HDP> (v[i], qkv, C3, 2 * C + h * hd, t, hd, t < s1);
#pragma unroll
      for (int d = 0; d < HDP; d++)
        {
          dk[i][d] = 0.0f;
          dv[i][d] = 0.0f;
        }
    }

  for (int i0 = s0; i0 < s1; i0 += NT)
    {
      const int it = i0 + threadIdx.x, ni = min (NT, s1 - i0);
      const bool row_ok = it < s1;
      __syncthreads ();
      load_row<HDP> (qs[threadIdx.x], qkv, C3, h * hd, it, hd, row_ok, scale * CS_LOG2E);
      load_row<HDP> (gs[threadIdx.x], dout, C, h * hd, it, hd, row_ok);
      {
        /* D_i = dO_i . o_i of the staged query (the loader computes it) */
        float o[HDP];
        load_row<HDP> (o, out, C, h * hd, it, hd, row_ok);
        Ds[threadIdx.x] = dot_row<HDP> (gs[threadIdx.x], o);
        Ls[threadIdx.x] = row_ok ? lse[(size_t) h * T + it] * CS_LOG2E : 0.0f;
      }
      __syncthreads ();
      for (int j = 0; j < ni; j++)
        {
#pragma unroll
          for (int i = 0; i < KPT; i++)
            {
              const float p = exp2f (dot_row<HDP> (qs[j], k[i]) - Ls[j]);
              const float ds = p * (dot_row<HDP> (gs[j], v[i]) - Ds[j]);
#pragma unroll
              for (int d = 0; d < HDP; d++)
                {
                  dv[i][d] += p * gs[j][d];
                  dk[i][d] += ds * qs[j][d];
                }
            }
        }
    }
#pragma unroll
  for (int i = 0; i < KPT; i++)
    {
      const int t = t0 + threadIdx.x + i * NT;
      if (t >= s1)
        continue;
      store_row<HDP> (dqkv, C3, C + h * hd, t, hd, dk[i], 1.0f / CS_LOG2E, true);
      store_row<HDP> (dqkv, C3, 2 * C + h * hd, t, hd, dv[i], 1.0f, true);
    }
}

/* ---------------------------------------------------------------- dispatch */

static gboolean
attention_shape_ok (CsCudaContext *ctx, int T, int C, int NH, int *hd)
{
  if (NH <= 0 || C % NH != 0)
    return cs_cuda_fail (ctx, __FILE__, __LINE__,
                         "attention: %d channels do not split into %d heads", C, NH);
  *hd = C / NH;
  if (*hd > 64)
    return cs_cuda_fail (ctx, __FILE__, __LINE__,
                         "attention: head dim %d is larger than the CUDA kernels' 64", *hd);
  if (NH > 65535)
    return cs_cuda_fail (ctx, __FILE__, __LINE__, "attention: %d heads are too many", NH);
  return TRUE;
}

/* <HDP, NT, QPT>: 8- and 16-wide heads take two tokens per thread (more reuse of each staged
 * key while registers last; on an H200, one, two and four per thread for 8-wide heads
 * timed within noise of each other), 32- and 64-wide ones one. Grid x: an upper bound of
 * the sequences' tiles (sum of ceil(len / BQ) <= T / BQ + n_seq); extra blocks return. */
#define ATTN_LAUNCH(KERNEL, HDP, NT, QPT, ...) \
  KERNEL<HDP, NT, QPT><<<dim3 ((T + NT * QPT - 1) / (NT * QPT) + n_seq, NH), NT>>> (__VA_ARGS__);
#define ATTN_DISPATCH(KERNEL, ...) \
  do \
    { \
      if (hd <= 8) \
        ATTN_LAUNCH (KERNEL, 8, 128, 2, __VA_ARGS__) \
      else if (hd <= 16) \
        ATTN_LAUNCH (KERNEL, 16, 128, 2, __VA_ARGS__) \
      else if (hd <= 32) \
        ATTN_LAUNCH (KERNEL, 32, 64, 1, __VA_ARGS__) \
      else \
        ATTN_LAUNCH (KERNEL, 64, 64, 1, __VA_ARGS__) \
    } \
  while (0)

gboolean
cs_cuda_attention_forward (CsCudaContext *ctx, float *out, float *lse, const float *qkv,
                           const int *seq_off, const int *seq_len, int n_seq, int T, int C,
                           int NH)
{
  int hd = 0;
  float scale;

  if (T <= 0 || n_seq <= 0)
    return TRUE;
  if (!attention_shape_ok (ctx, T, C, NH, &hd))
    return FALSE;
  scale = 1.0f / sqrtf ((float) hd);
  ATTN_DISPATCH (attention_forward_kernel, out, lse, qkv, seq_off, seq_len, n_seq, T, C, hd,
                 scale);
  return CS_CUDA_LAUNCHED (ctx, "attention_forward_kernel");
}

gboolean
cs_cuda_attention_backward (CsCudaContext *ctx, float *dqkv, const float *dout,
                            const float *qkv, const float *out, const float *lse,
                            const int *seq_off, const int *seq_len, int n_seq, int T, int C,
                            int NH)
{
  int hd = 0;
  float scale;

  if (T <= 0 || n_seq <= 0)
    return TRUE;
  if (!attention_shape_ok (ctx, T, C, NH, &hd))
    return FALSE;
  scale = 1.0f / sqrtf ((float) hd);
  ATTN_DISPATCH (attention_backward_dq_kernel, dqkv, dout, qkv, out, lse, seq_off, seq_len,
                 n_seq, T, C, hd, scale);
  if (!CS_CUDA_LAUNCHED (ctx, "attention_backward_dq_kernel"))
    return FALSE;
  ATTN_DISPATCH (attention_backward_dkv_kernel, dqkv, dout, qkv, out, lse, seq_off, seq_len,
                 n_seq, T, C, hd, scale);
  return CS_CUDA_LAUNCHED (ctx, "attention_backward_dkv_kernel");
}
