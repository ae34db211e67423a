/* cs-cuda-kernels.cu: the element-wise, row and column kernels of the CUDA backend.
 *
 * Each kernel mirrors its C reference in cs-cpu-ops.c formula for formula (same operation
 * order where it matters), so parity is a matter of rounding only. Row ops (LayerNorm, the
 * head loss) give one warp to a row; column reductions (dw, db, dcls, dmask) first sum
 * fixed chunks of CS_CUDA_REDUCE_ROWS rows into a partial row each, then add the partials
 * in chunk order: no atomics, so results are deterministic. Grid-stride loops everywhere. */
#include "cs-cuda-common.cuh"

#include <math.h>

#define WARP 32
#define ROWS_PER_BLOCK 8 /* warps of a 256-thread block, one row each */

static __device__ __forceinline__ float
warp_sum_f (float x)
{
  for (int o = WARP / 2; o > 0; o /= 2)
    x += __shfl_xor_sync (0xffffffffu, x, o);
  return x;
}

static __device__ __forceinline__ double
warp_sum_d (double x)
{
  for (int o = WARP / 2; o > 0; o /= 2)
    x += __shfl_xor_sync (0xffffffffu, x, o);
  return x;
}

#define GRID_STRIDE(i, n) \
  for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < (n); \
       i += (size_t) gridDim.x * blockDim.x)

static unsigned
elem_blocks (size_t n)
{
  return cs_cuda_blocks (n, CS_CUDA_ELEM_THREADS, CS_CUDA_ELEM_MAX_BLOCKS);
}

/* ---------------------------------------------------------------- column partial sums */

/* Adds partial[n_chunks][W] over chunks, in chunk order: column c < split goes to d0[c],
 * the rest to d1[c - split]. */
static __global__ void
add_partials_kernel (float *d0, float *d1, int split, const float *partial, int n_chunks, int W)
{
  GRID_STRIDE (c, (size_t) W)
    {
      float s = 0.0f;
      for (int k = 0; k < n_chunks; k++)
        s += partial[(size_t) k * W + c];
      if ((int) c < split)
        d0[c] += s;
      else
        d1[c - split] += s;
    }
}

static gboolean
add_partials (CsCudaContext *ctx, float *d0, float *d1, int split, const float *partial,
              int n_chunks, int W)
{
  add_partials_kernel<<<elem_blocks ((size_t) W), CS_CUDA_ELEM_THREADS>>> (d0, d1, split,
                                                                          partial, n_chunks, W);
  return CS_CUDA_LAUNCHED (ctx, "add_partials_kernel");
}

static int
n_chunks_of (int T)
{
  return (T + CS_CUDA_REDUCE_ROWS - 1) / CS_CUDA_REDUCE_ROWS;
}

/* grid (column blocks, chunks): partial[chunk][c] = sum of x[t][c] over the chunk's rows */
static __global__ void
colsum_partial_kernel (float *partial, const float *x, int T, int C)
{
  int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  int t0 = chunk * CS_CUDA_REDUCE_ROWS, t1 = min (T, t0 + CS_CUDA_REDUCE_ROWS);
  float s = 0.0f;

  if (c >= C)
    return;
  for (int t = t0; t < t1; t++)
    s += x[(size_t) t * C + c];
  partial[(size_t) chunk * C + c] = s;
}

gboolean
cs_cuda_colsum_add (CsCudaContext *ctx, float *out, const float *x, int T, int C)
{
  int n_chunks = n_chunks_of (T);
  float *partial;

  if (T <= 0 || C <= 0)
    return TRUE;
  partial = (float *) cs_cuda_scratch (ctx, sizeof (float) * (size_t) n_chunks * C);
  if (partial == NULL)
    return FALSE;
  colsum_partial_kernel<<<dim3 ((C + 127) / 128, n_chunks), 128>>> (partial, x, T, C);
  if (!CS_CUDA_LAUNCHED (ctx, "colsum_partial_kernel"))
    return FALSE;
  return add_partials (ctx, out, NULL, C, partial, n_chunks, C);
}

/* ---------------------------------------------------------------- linear helpers */

static __global__ void
fill_bias_kernel (float *out, const float *b, size_t n, int O)
{
  GRID_STRIDE (i, n)
    out[i] = b[i % O];
}

gboolean
cs_cuda_fill_bias (CsCudaContext *ctx, float *out, const float *b, int T, int O)
{
  size_t n = (size_t) T * O;

  if (n == 0)
    return TRUE;
  fill_bias_kernel<<<elem_blocks (n), CS_CUDA_ELEM_THREADS>>> (out, b, n, O);
  return CS_CUDA_LAUNCHED (ctx, "fill_bias_kernel");
}

/* c[m, n] (row stride ldc) *= beta: a GEMM with k = 0 */
static __global__ void
scale_matrix_kernel (float *c, int m, int n, int ldc, float beta)
{
  GRID_STRIDE (i, (size_t) m * n)
    {
      float *e = c + (i / n) * (size_t) ldc + i % n;
      *e = beta == 0.0f ? 0.0f : *e * beta;
    }
}

gboolean
cs_cuda_scale_matrix (CsCudaContext *ctx, float *c, int m, int n, int ldc, float beta)
{
  if (m <= 0 || n <= 0)
    return TRUE;
  scale_matrix_kernel<<<elem_blocks ((size_t) m * n), CS_CUDA_ELEM_THREADS>>> (c, m, n, ldc,
                                                                              beta);
  return CS_CUDA_LAUNCHED (ctx, "scale_matrix_kernel");
}

/* ---------------------------------------------------------------- LayerNorm */

/* one warp per row t: two passes for mean and (biased) variance, as the C reference */
static __global__ void
layernorm_forward_kernel (float *out, float *mean, float *rstd, const float *inp,
                          const float *w, const float *b, int T, int C)
{
  int lane = threadIdx.x % WARP;
  int t = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / WARP;
  const float *x;
  float *y;
  float m = 0.0f, v = 0.0f, s;

  if (t >= T)
    return; /* whole warps leave together: the shuffles below see all 32 lanes */
  x = inp + (size_t) t * C;
  y = out + (size_t) t * C;
  for (int c = lane; c < C; c += WARP)
    m += x[c];
  m = warp_sum_f (m) / C;
  for (int c = lane; c < C; c += WARP)
    v += (x[c] - m) * (x[c] - m);
  v = warp_sum_f (v) / C;
  s = 1.0f / sqrtf (v + 1e-5f);
  for (int c = lane; c < C; c += WARP)
    y[c] = (x[c] - m) * s * w[c] + b[c];
  if (lane == 0)
    {
      mean[t] = m;
      rstd[t] = s;
    }
}

gboolean
cs_cuda_layernorm_forward (CsCudaContext *ctx, float *out, float *mean, float *rstd,
                           const float *inp, const float *w, const float *b, int T, int C)
{
  if (T <= 0)
    return TRUE;
  layernorm_forward_kernel<<<(T + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK, ROWS_PER_BLOCK * WARP>>> (
    out, mean, rstd, inp, w, b, T, C);
  return CS_CUDA_LAUNCHED (ctx, "layernorm_forward_kernel");
}

/* dinp (accumulates), one warp per row */
static __global__ void
layernorm_backward_dinp_kernel (float *dinp, const float *dout, const float *inp,
                                const float *w, const float *mean, const float *rstd,
                                int T, int C)
{
  int lane = threadIdx.x % WARP;
  int t = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / WARP;
  const float *x, *dy;
  float *dx;
  float m, s, dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;

  if (t >= T)
    return;
  x = inp + (size_t) t * C;
  dy = dout + (size_t) t * C;
  dx = dinp + (size_t) t * C;
  m = mean[t];
  s = rstd[t];
  for (int c = lane; c < C; c += WARP)
    {
      float norm = (x[c] - m) * s;
      float dnorm = w[c] * dy[c];
      dnorm_mean += dnorm;
      dnorm_norm_mean += dnorm * norm;
    }
  dnorm_mean = warp_sum_f (dnorm_mean) / C;
  dnorm_norm_mean = warp_sum_f (dnorm_norm_mean) / C;
  for (int c = lane; c < C; c += WARP)
    {
      float norm = (x[c] - m) * s;
      float dnorm = w[c] * dy[c];
      dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
    }
}

/* partial[chunk][0..C) = sum norm * dy (dw), partial[chunk][C..2C) = sum dy (db) */
static __global__ void
layernorm_backward_partial_kernel (float *partial, const float *dout, const float *inp,
                                   const float *mean, const float *rstd, int T, int C)
{
  int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  int t0 = chunk * CS_CUDA_REDUCE_ROWS, t1 = min (T, t0 + CS_CUDA_REDUCE_ROWS);
  float sw = 0.0f, sb = 0.0f;

  if (c >= C)
    return;
  for (int t = t0; t < t1; t++)
    {
      float dy = dout[(size_t) t * C + c];
      float norm = (inp[(size_t) t * C + c] - mean[t]) * rstd[t];
      sw += norm * dy;
      sb += dy;
    }
  partial[(size_t) chunk * 2 * C + c] = sw;
  partial[(size_t) chunk * 2 * C + C + c] = sb;
}

gboolean
cs_cuda_layernorm_backward (CsCudaContext *ctx, float *dinp, float *dw, float *db,
                            const float *dout, const float *inp, const float *w,
                            const float *mean, const float *rstd, int T, int C)
{
  int n_chunks = n_chunks_of (T);
  float *partial;

  if (T <= 0)
    return TRUE;
  layernorm_backward_dinp_kernel<<<(T + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK,
                                   ROWS_PER_BLOCK * WARP>>> (dinp, dout, inp, w, mean, rstd,
                                                             T, C);
  if (!CS_CUDA_LAUNCHED (ctx, "layernorm_backward_dinp_kernel"))
    return FALSE;
  partial = (float *) cs_cuda_scratch (ctx, sizeof (float) * 2 * (size_t) n_chunks * C);
  if (partial == NULL)
    return FALSE;
  layernorm_backward_partial_kernel<<<dim3 ((C + 127) / 128, n_chunks), 128>>> (
    partial, dout, inp, mean, rstd, T, C);
  if (!CS_CUDA_LAUNCHED (ctx, "layernorm_backward_partial_kernel"))
    return FALSE;
  return add_partials (ctx, dw, db, C, partial, n_chunks, 2 * C);
}

/* ---------------------------------------------------------------- GELU, adds */

#define GELU_RSQRT2 0.70710678118654752f
#define GELU_RSQRT2PI 0.39894228040143268f

static __global__ void
gelu_forward_kernel (float *out, const float *inp, size_t N)
{
  GRID_STRIDE (i, N)
    {
      float x = inp[i];
      out[i] = 0.5f * x * (1.0f + erff (x * GELU_RSQRT2));
    }
}

static __global__ void
gelu_backward_kernel (float *dinp, const float *inp, const float *dout, size_t N)
{
  GRID_STRIDE (i, N)
    {
      float x = inp[i];
      float cdf = 0.5f * (1.0f + erff (x * GELU_RSQRT2));
      float pdf = GELU_RSQRT2PI * expf (-0.5f * x * x);
      dinp[i] += (cdf + x * pdf) * dout[i];
    }
}

gboolean
cs_cuda_gelu_forward (CsCudaContext *ctx, float *out, const float *inp, size_t N)
{
  if (N == 0)
    return TRUE;
  gelu_forward_kernel<<<elem_blocks (N), CS_CUDA_ELEM_THREADS>>> (out, inp, N);
  return CS_CUDA_LAUNCHED (ctx, "gelu_forward_kernel");
}

gboolean
cs_cuda_gelu_backward (CsCudaContext *ctx, float *dinp, const float *inp, const float *dout,
                       size_t N)
{
  if (N == 0)
    return TRUE;
  gelu_backward_kernel<<<elem_blocks (N), CS_CUDA_ELEM_THREADS>>> (dinp, inp, dout, N);
  return CS_CUDA_LAUNCHED (ctx, "gelu_backward_kernel");
}

/* out may alias a (add_inplace): each element is read before it is written by one thread */
static __global__ void
add_kernel (float *out, const float *a, const float *b, size_t N)
{
  GRID_STRIDE (i, N)
    out[i] = a[i] + b[i];
}

gboolean
cs_cuda_add (CsCudaContext *ctx, float *out, const float *a, const float *b, size_t N)
{
  if (N == 0)
    return TRUE;
  add_kernel<<<elem_blocks (N), CS_CUDA_ELEM_THREADS>>> (out, a, b, N);
  return CS_CUDA_LAUNCHED (ctx, "add_kernel");
}

/* ---------------------------------------------------------------- tokens */

static __global__ void
embed_forward_kernel (float *x, const float *cls, const float *pos, const int *token_patch,
                      int T, int C)
{
  GRID_STRIDE (i, (size_t) T * C)
    {
      size_t t = i / C, c = i % C;
      int p = token_patch[t];
      x[i] = p < 0 ? cls[c] : x[i] + pos[(size_t) p * C + c];
    }
}

gboolean
cs_cuda_embed_forward (CsCudaContext *ctx, float *x, const float *cls, const float *pos,
                       const int *token_patch, int T, int C)
{
  size_t n = (size_t) T * C;
  if (n == 0)
    return TRUE;
  embed_forward_kernel<<<elem_blocks (n), CS_CUDA_ELEM_THREADS>>> (x, cls, pos, token_patch,
                                                                   T, C);
  return CS_CUDA_LAUNCHED (ctx, "embed_forward_kernel");
}

/* partial[chunk][c] = sum of x[t][c] over the chunk's rows t with key[t] < 0 */
static __global__ void
colsum_negative_partial_kernel (float *partial, const float *x, const int *key, int T, int C)
{
  int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
  int t0 = chunk * CS_CUDA_REDUCE_ROWS, t1 = min (T, t0 + CS_CUDA_REDUCE_ROWS);
  float s = 0.0f;

  if (c >= C)
    return;
  for (int t = t0; t < t1; t++)
    if (key[t] < 0)
      s += x[(size_t) t * C + c];
  partial[(size_t) chunk * C + c] = s;
}

/* out[C] += sum of the rows of x[T,C] whose key is negative */
static gboolean
colsum_negative_add (CsCudaContext *ctx, float *out, const float *x, const int *key, int T, int C)
{
  int n_chunks = n_chunks_of (T);
  float *partial = (float *) cs_cuda_scratch (ctx, sizeof (float) * (size_t) n_chunks * C);

  if (partial == NULL)
    return FALSE;
  colsum_negative_partial_kernel<<<dim3 ((C + 127) / 128, n_chunks), 128>>> (partial, x, key,
                                                                            T, C);
  if (!CS_CUDA_LAUNCHED (ctx, "colsum_negative_partial_kernel"))
    return FALSE;
  return add_partials (ctx, out, NULL, C, partial, n_chunks, C);
}

static __global__ void
zero_negative_rows_kernel (float *x, const int *key, int T, int C)
{
  GRID_STRIDE (i, (size_t) T * C)
    if (key[i / C] < 0)
      x[i] = 0.0f;
}

gboolean
cs_cuda_embed_backward (CsCudaContext *ctx, float *dcls, float *dx, const int *token_patch,
                        int T, int C)
{
  size_t n = (size_t) T * C;
  if (n == 0)
    return TRUE;
  /* the sum reads the class rows before the (later, same stream) kernel zeroes them */
  if (!colsum_negative_add (ctx, dcls, dx, token_patch, T, C))
    return FALSE;
  zero_negative_rows_kernel<<<elem_blocks (n), CS_CUDA_ELEM_THREADS>>> (dx, token_patch, T, C);
  return CS_CUDA_LAUNCHED (ctx, "zero_negative_rows_kernel");
}

static __global__ void
scatter_forward_kernel (float *x, const float *y, const float *mask_token, const float *pos,
                        const int *src, const int *patch, int T, int C)
{
  GRID_STRIDE (i, (size_t) T * C)
    {
      size_t t = i / C, c = i % C;
      float from = src[t] >= 0 ? y[(size_t) src[t] * C + c] : mask_token[c];
      x[i] = patch[t] >= 0 ? from + pos[(size_t) patch[t] * C + c] : from;
    }
}

gboolean
cs_cuda_scatter_forward (CsCudaContext *ctx, float *x, const float *y, const float *mask_token,
                         const float *pos, const int *src, const int *patch, int T, int C)
{
  size_t n = (size_t) T * C;
  if (n == 0)
    return TRUE;
  scatter_forward_kernel<<<elem_blocks (n), CS_CUDA_ELEM_THREADS>>> (x, y, mask_token, pos, src,
                                                                     patch, T, C);
  return CS_CUDA_LAUNCHED (ctx, "scatter_forward_kernel");
}

/* sources are unique (cs-backend.h), so each dy element has at most one writer */
static __global__ void
scatter_backward_rows_kernel (float *dy, const float *dx, const int *src, int T, int C)
{
  GRID_STRIDE (i, (size_t) T * C)
    {
      size_t t = i / C, c = i % C;
      if (src[t] >= 0)
        dy[(size_t) src[t] * C + c] += dx[i];
    }
}

gboolean
cs_cuda_scatter_backward (CsCudaContext *ctx, float *dy, float *dmask_token, const float *dx,
                          const int *src, int T, int C)
{
  size_t n = (size_t) T * C;
  if (n == 0)
    return TRUE;
  scatter_backward_rows_kernel<<<elem_blocks (n), CS_CUDA_ELEM_THREADS>>> (dy, dx, src, T, C);
  if (!CS_CUDA_LAUNCHED (ctx, "scatter_backward_rows_kernel"))
    return FALSE;
  return colsum_negative_add (ctx, dmask_token, dx, src, T, C);
}

/* ---------------------------------------------------------------- head loss */

/* one warp per row: pred, dlogit, and row_loss[t] = coef[t] * sum_k (pred - target)^2 */
static __global__ void
sigmoid_loss_rows_kernel (double *row_loss, float *pred, float *dlogit, const float *logit,
                          const float *target, const float *coef, float grad_scale, int T, int K)
{
  int lane = threadIdx.x % WARP;
  int t = blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / WARP;
  float a;
  double row = 0.0;

  if (t >= T)
    return;
  a = coef[t];
  for (int k = lane; k < K; k += WARP)
    {
      size_t i = (size_t) t * K + k;
      float s = 1.0f / (1.0f + expf (-logit[i]));
      float e = s - target[i];
      pred[i] = s;
      row += (double) e * e;
      if (dlogit != NULL)
        dlogit[i] = grad_scale * a * 2.0f * e * s * (1.0f - s);
    }
  row = warp_sum_d (row);
  if (lane == 0)
    row_loss[t] = a * row;
}

#define LOSS_SUM_THREADS 512

/* one block: *total = sum of row_loss[0..T), a fixed tree, so the same every run */
static __global__ void
sum_rows_kernel (double *total, const double *row_loss, int T)
{
  __shared__ double part[LOSS_SUM_THREADS];
  double s = 0.0;

  for (int t = threadIdx.x; t < T; t += LOSS_SUM_THREADS)
    s += row_loss[t];
  part[threadIdx.x] = s;
  __syncthreads ();
  for (int half = LOSS_SUM_THREADS / 2; half > 0; half /= 2)
    {
      if ((int) threadIdx.x < half)
        part[threadIdx.x] += part[threadIdx.x + half];
      __syncthreads ();
    }
  if (threadIdx.x == 0)
    *total = part[0];
}

gboolean
cs_cuda_sigmoid_loss (CsCudaContext *ctx, double *loss, float *pred, float *dlogit,
                      const float *logit, const float *target, const float *coef,
                      float grad_scale, int T, int K)
{
  double *rows;

  *loss = 0.0;
  if (T <= 0)
    return TRUE;
  rows = (double *) cs_cuda_scratch (ctx, sizeof (double) * ((size_t) T + 1));
  if (rows == NULL)
    return FALSE;
  sigmoid_loss_rows_kernel<<<(T + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK, ROWS_PER_BLOCK * WARP>>> (
    rows + 1, pred, dlogit, logit, target, coef, grad_scale, T, K);
  if (!CS_CUDA_LAUNCHED (ctx, "sigmoid_loss_rows_kernel"))
    return FALSE;
  sum_rows_kernel<<<1, LOSS_SUM_THREADS>>> (rows, rows + 1, T);
  if (!CS_CUDA_LAUNCHED (ctx, "sum_rows_kernel"))
    return FALSE;
  return CS_CUDA_CHECK (ctx, cudaMemcpy (loss, rows, sizeof (double), cudaMemcpyDeviceToHost));
}

/* ---------------------------------------------------------------- Adam */

static __global__ void
adam_kernel (float *p, const float *g, float *m, float *v, size_t N, float step_size,
             float b1, float b2, float eps, float bc2_sqrt)
{
  GRID_STRIDE (i, N)
    {
      float gi = g[i];
      float mi = b1 * m[i] + (1.0f - b1) * gi;
      float vi = b2 * v[i] + (1.0f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      /* torch.optim.Adam: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps) */
      p[i] -= step_size * mi / (sqrtf (vi) / bc2_sqrt + eps);
    }
}

gboolean
cs_cuda_adam (CsCudaContext *ctx, float *params, const float *grads, float *m, float *v,
              size_t N, float lr, float beta1, float beta2, float eps, long step)
{
  /* the bias corrections exactly as the C reference computes them */
  float bc1 = (float) (1.0 - pow (beta1, (double) step));
  float bc2_sqrt = (float) sqrt (1.0 - pow (beta2, (double) step));

  if (N == 0)
    return TRUE;
  adam_kernel<<<elem_blocks (N), CS_CUDA_ELEM_THREADS>>> (params, grads, m, v, N, lr / bc1,
                                                          beta1, beta2, eps, bc2_sqrt);
  return CS_CUDA_LAUNCHED (ctx, "adam_kernel");
}
