/* cs-cuda-attention.cu: multi-head self-attention of packed sequences for SMALL head dims
 * (<= 64; the presets use 8), forward and backward, softmax fused, no T x T matrix stored.
 *
 * One thread per (token, head); a block holds TILE consecutive packed tokens of one head
 * (blockIdx.y), which may straddle sequences. Each thread finds its own sequence by a scan
 * of seq_off/seq_len (device memory; no assumption on their order), and the block walks the
 * union of its threads' key ranges in tiles staged in shared memory; each thread uses only
 * the keys of its own sequence. Head dims are zero-padded to HDP (8, 16, 32 or 64), so
 * the padded channels add exact zeros to every dot product.
 *   forward:  online softmax (running max m, sum l, accumulator), lse = m + log l.
 *   backward: probabilities recomputed from lse (flash-attention style), D_i = dO_i . o_i;
 *             one kernel per query gives dq, one per key gives dk and dv, so every output
 *             element has exactly one writer: no atomics, deterministic. */
#include "cs-cuda-common.cuh"

#include <limits.h>
#include <math.h>

/* the sequence [*s0, *s1) holding token t, or an empty range */
static __device__ __forceinline__ void
find_sequence (const int *seq_off, const int *seq_len, int n_seq, int t, int *s0, int *s1)
{
  *s0 = 0;
  *s1 = 0;
  for (int b = 0; b < n_seq; b++)
    {
      int off = seq_off[b], len = seq_len[b];
      if (len > 0 && t >= off && t < off + len)
        {
          *s0 = off;
          *s1 = off + len;
          return;
        }
    }
}

/* the union [lo, hi) of the active threads' ranges, in shared memory; block-uniform */
static __device__ __forceinline__ void
block_range (int s0, int s1, int *lo, int *hi)
{
  __shared__ int kmin, kmax;

  if (threadIdx.x == 0)
    {
      kmin = INT_MAX;
      kmax = INT_MIN;
    }
  __syncthreads ();
  if (s1 > s0)
    {
      atomicMin (&kmin, s0);
      atomicMax (&kmax, s1);
    }
  __syncthreads ();
  *lo = kmin;
  *hi = kmax;
}

/* row[HDP] = channels base .. base+hd-1 of row r of a [*, stride] matrix, zero-padded */
template <int HDP>
static __device__ __forceinline__ void
load_row (float *row, const float *m, int stride, int base, int r, int hd, bool valid)
{
#pragma unroll
  for (int d = 0; d < HDP; d++)
    row[d] = valid && d < hd ? m[(size_t) r * stride + base + d] : 0.0f;
}

template <int HDP, int TILE>
static __global__ void __launch_bounds__ (TILE)
attention_forward_kernel (float *out, float *lse, const float *qkv, const int *seq_off,
                          const int *seq_len, int n_seq, int T, int C, int hd, float scale)
{
  __shared__ float ks[TILE][HDP];
  __shared__ float vs[TILE][HDP];
  const int h = blockIdx.y, C3 = 3 * C;
  const int t = blockIdx.x * TILE + threadIdx.x;
  int s0 = 0, s1 = 0, lo, hi;
  float q[HDP], acc[HDP], m = -INFINITY, l = 0.0f;

  if (t < T)
    find_sequence (seq_off, seq_len, n_seq, t, &s0, &s1);
  block_range (s0, s1, &lo, &hi);
  if (hi <= lo)
    return; /* block-uniform: no thread of this block has a sequence */
  const bool active = s1 > s0;
  load_row<HDP> (q, qkv, C3, h * hd, t, hd, active);
#pragma unroll
  for (int d = 0; d < HDP; d++)
    acc[d] = 0.0f;

  for (int k0 = lo; k0 < hi; k0 += TILE)
    {
      const int kt = k0 + threadIdx.x;
      __syncthreads (); /* the previous tile is consumed */
      load_row<HDP> (ks[threadIdx.x], qkv, C3, C + h * hd, kt, hd, kt < hi);
      load_row<HDP> (vs[threadIdx.x], qkv, C3, 2 * C + h * hd, kt, hd, kt < hi);
      __syncthreads ();
      if (!active)
        continue;
      const int j0 = max (k0, s0) - k0, j1 = min (k0 + TILE, s1) - k0;
      for (int j = j0; j < j1; j++)
        {
          float dot = 0.0f;
#pragma unroll
          for (int d = 0; d < HDP; d++)
            dot += q[d] * ks[j][d];
          const float s = dot * scale;
          if (s > m)
            {
              /* new maximum: rescale what was summed so far (first key: c = 0) */
              const float c = expf (m - s);
              l = l * c + 1.0f;
#pragma unroll
              for (int d = 0; d < HDP; d++)
                acc[d] = acc[d] * c + vs[j][d];
              m = s;
            }
          else
            {
              const float p = expf (s - m);
              l += p;
#pragma unroll
              for (int d = 0; d < HDP; d++)
                acc[d] += p * vs[j][d];
            }
        }
    }
  if (!active)
    return;
#pragma unroll
  for (int d = 0; d < HDP; d++)
    if (d < hd)
      out[(size_t) t * C + h * hd + d] = acc[d] / l;
  lse[(size_t) h * T + t] = m + logf (l);
}

/* dq of each query: sum_j ds_ij k_j * scale, ds_ij = p_ij (dO_i . v_j - D_i) */
template <int HDP, int TILE>
static __global__ void __launch_bounds__ (TILE)
attention_backward_dq_kernel (float *dqkv, const float *dout, const float *qkv,
                              const float *out, const float *lse, const int *seq_off,
                              const int *seq_len, int n_seq, int T, int C, int hd, float scale)
{
  __shared__ float ks[TILE][HDP];
  __shared__ float vs[TILE][HDP];
  const int h = blockIdx.y, C3 = 3 * C;
  const int t = blockIdx.x * TILE + threadIdx.x;
  int s0 = 0, s1 = 0, lo, hi;
  float q[HDP], g[HDP], dq[HDP], D = 0.0f, L = 0.0f;

  if (t < T)
    find_sequence (seq_off, seq_len, n_seq, t, &s0, &s1);
  block_range (s0, s1, &lo, &hi);
  if (hi <= lo)
    return;
  const bool active = s1 > s0;
  load_row<HDP> (q, qkv, C3, h * hd, t, hd, active);
  load_row<HDP> (g, dout, C, h * hd, t, hd, active);
  {
    float o[HDP];
    load_row<HDP> (o, out, C, h * hd, t, hd, active);
#pragma unroll
    for (int d = 0; d < HDP; d++)
      {
        D += g[d] * o[d];
        dq[d] = 0.0f;
      }
  }
  if (active)
    L = lse[(size_t) h * T + t];

  for (int k0 = lo; k0 < hi; k0 += TILE)
    {
      const int kt = k0 + threadIdx.x;
      __syncthreads ();
      load_row<HDP> (ks[threadIdx.x], qkv, C3, C + h * hd, kt, hd, kt < hi);
      load_row<HDP> (vs[threadIdx.x], qkv, C3, 2 * C + h * hd, kt, hd, kt < hi);
      __syncthreads ();
      if (!active)
        continue;
      const int j0 = max (k0, s0) - k0, j1 = min (k0 + TILE, s1) - k0;
      for (int j = j0; j < j1; j++)
        {
          float dot = 0.0f, dp = 0.0f;
#pragma unroll
          for (int d = 0; d < HDP; d++)
            {
              dot += q[d] * ks[j][d];
              dp += g[d] * vs[j][d];
            }
          const float p = expf (dot * scale - L);
          const float ds = p * (dp - D) * scale;
#pragma unroll
          for (int d = 0; d < HDP; d++)
            dq[d] += ds * ks[j][d];
        }
    }
  if (!active)
    return;
#pragma unroll
  for (int d = 0; d < HDP; d++)
    if (d < hd)
      dqkv[(size_t) t * C3 + h * hd + d] += dq[d];
}

/* dk, dv of each key: dv_j = sum_i p_ij dO_i, dk_j = sum_i ds_ij q_i * scale */
template <int HDP, int TILE>
static __global__ void __launch_bounds__ (TILE)
attention_backward_dkv_kernel (float *dqkv, const float *dout, const float *qkv,
                               const float *out, const float *lse, const int *seq_off,
                               const int *seq_len, int n_seq, int T, int C, int hd, float scale)
{
  __shared__ float qs[TILE][HDP];
  __shared__ float gs[TILE][HDP];
  __shared__ float Ls[TILE];
  __shared__ float Ds[TILE];
  const int h = blockIdx.y, C3 = 3 * C;
  const int t = blockIdx.x * TILE + threadIdx.x;
  int s0 = 0, s1 = 0, lo, hi;
  float k[HDP], v[HDP], dk[HDP], dv[HDP];

  if (t < T)
    find_sequence (seq_off, seq_len, n_seq, t, &s0, &s1);
  block_range (s0, s1, &lo, &hi);
  if (hi <= lo)
    return;
  const bool active = s1 > s0;
  load_row<HDP> (k, qkv, C3, C + h * hd, t, hd, active);
  load_row<HDP> (v, qkv, C3, 2 * C + h * hd, t, hd, active);
#pragma unroll
  for (int d = 0; d < HDP; d++)
    {
      dk[d] = 0.0f;
      dv[d] = 0.0f;
    }

  for (int i0 = lo; i0 < hi; i0 += TILE)
    {
      const int it = i0 + threadIdx.x;
      const bool row_ok = it < hi;
      __syncthreads ();
      load_row<HDP> (qs[threadIdx.x], qkv, C3, h * hd, it, hd, row_ok);
      load_row<HDP> (gs[threadIdx.x], dout, C, h * hd, it, hd, row_ok);
      {
        /* D_i = dO_i . o_i of the staged query (the loader computes it) */
        float o[HDP], D = 0.0f;
        load_row<HDP> (o, out, C, h * hd, it, hd, row_ok);
#pragma unroll
        for (int d = 0; d < HDP; d++)
          D += gs[threadIdx.x][d] * o[d];
        Ds[threadIdx.x] = D;
        Ls[threadIdx.x] = row_ok ? lse[(size_t) h * T + it] : 0.0f;
      }
      __syncthreads ();
      if (!active)
        continue;
      const int j0 = max (i0, s0) - i0, j1 = min (i0 + TILE, s1) - i0;
      for (int i = j0; i < j1; i++)
        {
          float dot = 0.0f, dp = 0.0f;
#pragma unroll
          for (int d = 0; d < HDP; d++)
            {
              dot += qs[i][d] * k[d];
              dp += gs[i][d] * v[d];
            }
          const float p = expf (dot * scale - Ls[i]);
          const float ds = p * (dp - Ds[i]) * scale;
#pragma unroll
          for (int d = 0; d < HDP; d++)
            {
              dv[d] += p * gs[i][d];
              dk[d] += ds * qs[i][d];
            }
        }
    }
  if (!active)
    return;
#pragma unroll
  for (int d = 0; d < HDP; d++)
    if (d < hd)
      {
        dqkv[(size_t) t * C3 + C + h * hd + d] += dk[d];
        dqkv[(size_t) t * C3 + 2 * C + h * hd + d] += dv[d];
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

#define ATTN_DISPATCH(KERNEL, ...) \
  do \
    { \
      if (hd <= 8) \
        { \
          KERNEL<8, 128><<<dim3 ((T + 127) / 128, NH), 128>>> (__VA_ARGS__); \
        } \
      else if (hd <= 16) \
        { \
          KERNEL<16, 128><<<dim3 ((T + 127) / 128, NH), 128>>> (__VA_ARGS__); \
        } \
      else if (hd <= 32) \
        { \
          KERNEL<32, 64><<<dim3 ((T + 63) / 64, NH), 64>>> (__VA_ARGS__); \
        } \
      else \
        { \
          KERNEL<64, 64><<<dim3 ((T + 63) / 64, NH), 64>>> (__VA_ARGS__); \
        } \
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
