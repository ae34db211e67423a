/* cs-cpu-ops.c: CPU kernels of the engine ops (see cs-cpu-ops.h). Attention lives in
 * cs-attention.c. */
#include "cs-cpu-ops.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cs-simd.h"

#define CS_REDUCE_CHUNK 64 /* rows per partial sum: reductions independent of thread count */
#define CS_ELEM_CHUNK 4096 /* elements per task of elementwise loops */

/* ---------------------------------------------------------------- GEMM */

typedef struct
{
  gboolean ta, tb;
  int m, n, k, lda, ldb, ldc;
  float alpha, beta;
  const float *a, *b;
  float *c;
  gboolean split_rows;
  int n_parts;
} GemmJob;

static void
gemm_task (int begin, int end, int thread, void *ctx)
{
  const GemmJob *j = ctx;

  for (int part = begin; part < end; part++)
    {
      int total = j->split_rows ? j->m : j->n;
      /* multiples of 16 keep the packed OpenBLAS panels whole */
      int unit = (total + 15) / 16;
      int u0 = (int) ((gint64) unit * part / j->n_parts);
      int u1 = (int) ((gint64) unit * (part + 1) / j->n_parts);
      int r0 = MIN (total, u0 * 16), r1 = MIN (total, u1 * 16);

      if (r1 <= r0)
        continue;
      if (j->split_rows)
        {
          const float *a = j->ta ? j->a + r0 : j->a + (size_t) r0 * j->lda;
          cblas_sgemm (CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans,
                       j->tb ? CblasTrans : CblasNoTrans, r1 - r0, j->n, j->k, j->alpha,
                       a, j->lda, j->b, j->ldb, j->beta, j->c + (size_t) r0 * j->ldc, j->ldc);
        }
      else
        {
          const float *b = j->tb ? j->b + (size_t) r0 * j->ldb : j->b + r0;
          cblas_sgemm (CblasRowMajor, j->ta ? CblasTrans : CblasNoTrans,
                       j->tb ? CblasTrans : CblasNoTrans, j->m, r1 - r0, j->k, j->alpha,
                       j->a, j->lda, b, j->ldb, j->beta, j->c + r0, j->ldc);
        }
    }
}

void
cs_cpu_gemm (CsPool *pool, gboolean trans_a, gboolean trans_b, int m, int n, int k,
             float alpha, const float *a, int lda, const float *b, int ldb,
             float beta, float *c, int ldc)
{
  GemmJob job = { trans_a, trans_b, m, n, k, lda, ldb, ldc, alpha, beta, a, b, c,
                  m >= n, cs_pool_n_threads (pool) };

  if (m <= 0 || n <= 0)
    return;
  /* the split below is the parallelism: OpenBLAS threads on top would oversubscribe the
   * cores and spin between calls (someone else in the process may have raised it) */
  if (openblas_get_num_threads () != 1)
    openblas_set_num_threads (1);
  if (k <= 0)
    {
      for (int i = 0; i < m; i++)
        for (int jj = 0; jj < n; jj++)
          c[(size_t) i * ldc + jj] *= beta;
      return;
    }
  if (job.n_parts == 1 || (double) m * n * k < 1e6)
    {
      job.n_parts = 1;
      gemm_task (0, 1, 0, &job);
      return;
    }
  cs_pool_run (pool, job.n_parts, gemm_task, &job);
}

/* ---------------------------------------------------------------- column sums */

typedef struct
{
  const float *x;
  float *partial;
  float *out;
  int T, C, n_chunks;
} ColSumJob;

static void
colsum_partial_task (int begin, int end, int thread, void *ctx)
{
  const ColSumJob *j = ctx;

  for (int chunk = begin; chunk < end; chunk++)
    {
      float *p = j->partial + (size_t) chunk * j->C;
      int t1 = MIN (j->T, (chunk + 1) * CS_REDUCE_CHUNK);
      memset (p, 0, sizeof (float) * j->C);
      for (int t = chunk * CS_REDUCE_CHUNK; t < t1; t++)
        {
          const float *row = j->x + (size_t) t * j->C;
          for (int c = 0; c < j->C; c++)
            p[c] += row[c];
        }
    }
}

/* out[C] += sum over rows of x[T,C], in a fixed order */
static void
colsum_accumulate (CsPool *pool, float *out, const float *x, int T, int C)
{
  ColSumJob job = { x, NULL, out, T, C, (T + CS_REDUCE_CHUNK - 1) / CS_REDUCE_CHUNK };

  if (T <= 0)
    return;
  job.partial = cs_pool_scratch (pool, cs_pool_n_threads (pool),
                                 sizeof (float) * job.n_chunks * C);
  cs_pool_run (pool, job.n_chunks, colsum_partial_task, &job);
  for (int chunk = 0; chunk < job.n_chunks; chunk++)
    for (int c = 0; c < C; c++)
      out[c] += job.partial[(size_t) chunk * C + c];
}

/* ---------------------------------------------------------------- linear */

typedef struct
{
  float *out;
  const float *b;
  int O;
} BiasJob;

static void
bias_fill_task (int begin, int end, int thread, void *ctx)
{
  const BiasJob *j = ctx;

  for (int t = begin; t < end; t++)
    {
      float *row = j->out + (size_t) t * j->O;
      if (j->b != NULL)
        memcpy (row, j->b, sizeof (float) * j->O);
      else
        memset (row, 0, sizeof (float) * j->O);
    }
}

void
cs_cpu_linear_forward (CsPool *pool, float *out, const float *inp, const float *w,
                       const float *b, int T, int IN, int O)
{
  BiasJob job = { out, b, O };

  /* out = b, then out += inp w^T: the bias costs no extra pass */
  cs_pool_run (pool, T, bias_fill_task, &job);
  cs_cpu_gemm (pool, FALSE, TRUE, T, O, IN, 1.0f, inp, IN, w, IN, 1.0f, out, O);
}

void
cs_cpu_linear_backward (CsPool *pool, float *dinp, float *dw, float *db,
                        const float *dout, const float *inp, const float *w,
                        int T, int IN, int O)
{
  if (dinp != NULL)
    cs_cpu_gemm (pool, FALSE, FALSE, T, IN, O, 1.0f, dout, O, w, IN, 1.0f, dinp, IN);
  cs_cpu_gemm (pool, TRUE, FALSE, O, IN, T, 1.0f, dout, O, inp, IN, 1.0f, dw, IN);
  if (db != NULL)
    colsum_accumulate (pool, db, dout, T, O);
}

/* ---------------------------------------------------------------- layernorm */

typedef struct
{
  float *out, *mean, *rstd, *dinp, *partial;
  const float *inp, *w, *b, *dout, *cmean, *crstd;
  int T, C;
} LayerNormJob;

static void
layernorm_forward_task (int begin, int end, int thread, void *ctx)
{
  const LayerNormJob *j = ctx;
  int C = j->C;

  for (int t = begin; t < end; t++)
    {
      const float *x = j->inp + (size_t) t * C;
      float *y = j->out + (size_t) t * C;
      float m = 0.0f, v = 0.0f, s;

      for (int c = 0; c < C; c++)
        m += x[c];
      m /= C;
      for (int c = 0; c < C; c++)
        v += (x[c] - m) * (x[c] - m);
      v /= C;
      s = 1.0f / sqrtf (v + 1e-5f);
      for (int c = 0; c < C; c++)
        y[c] = (x[c] - m) * s * j->w[c] + j->b[c];
      j->mean[t] = m;
      j->rstd[t] = s;
    }
}

void
cs_cpu_layernorm_forward (CsPool *pool, float *out, float *mean, float *rstd,
                          const float *inp, const float *w, const float *b, int T, int C)
{
  LayerNormJob job = { .out = out, .mean = mean, .rstd = rstd, .inp = inp, .w = w, .b = b,
                       .T = T, .C = C };

  cs_pool_run (pool, T, layernorm_forward_task, &job);
}

/* dinp per row; per-chunk partial dw (first C) and db (next C) */
static void
layernorm_backward_task (int begin, int end, int thread, void *ctx)
{
  const LayerNormJob *j = ctx;
  int C = j->C;

  for (int chunk = begin; chunk < end; chunk++)
    {
      float *pdw = j->partial + (size_t) chunk * 2 * C, *pdb = pdw + C;
      int t1 = MIN (j->T, (chunk + 1) * CS_REDUCE_CHUNK);

      memset (pdw, 0, sizeof (float) * 2 * C);
      for (int t = chunk * CS_REDUCE_CHUNK; t < t1; t++)
        {
          const float *x = j->inp + (size_t) t * C, *dy = j->dout + (size_t) t * C;
          float *dx = j->dinp + (size_t) t * C;
          float m = j->cmean[t], s = j->crstd[t];
          float dnorm_mean = 0.0f, dnorm_norm_mean = 0.0f;

          for (int c = 0; c < C; c++)
            {
              float norm = (x[c] - m) * s;
              float dnorm = j->w[c] * dy[c];
              dnorm_mean += dnorm;
              dnorm_norm_mean += dnorm * norm;
              pdb[c] += dy[c];
              pdw[c] += norm * dy[c];
            }
          dnorm_mean /= C;
          dnorm_norm_mean /= C;
          for (int c = 0; c < C; c++)
            {
              float norm = (x[c] - m) * s;
              float dnorm = j->w[c] * dy[c];
              dx[c] += (dnorm - dnorm_mean - norm * dnorm_norm_mean) * s;
            }
        }
    }
}

void
cs_cpu_layernorm_backward (CsPool *pool, float *dinp, float *dw, float *db,
                           const float *dout, const float *inp, const float *w,
                           const float *mean, const float *rstd, int T, int C)
{
  int n_chunks = (T + CS_REDUCE_CHUNK - 1) / CS_REDUCE_CHUNK;
  LayerNormJob job = { .dinp = dinp, .inp = inp, .w = w, .dout = dout, .cmean = mean,
                       .crstd = rstd, .T = T, .C = C };

  if (T <= 0)
    return;
  job.partial = cs_pool_scratch (pool, cs_pool_n_threads (pool),
                                 sizeof (float) * 2 * C * n_chunks);
  cs_pool_run (pool, n_chunks, layernorm_backward_task, &job);
  for (int chunk = 0; chunk < n_chunks; chunk++)
    {
      const float *pdw = job.partial + (size_t) chunk * 2 * C, *pdb = pdw + C;
      for (int c = 0; c < C; c++)
        {
          dw[c] += pdw[c];
          db[c] += pdb[c];
        }
    }
}

/* ---------------------------------------------------------------- GELU */

typedef struct
{
  float *out;
  const float *inp, *dout;
  size_t N;
} ElemJob;

#define GELU_RSQRT2 0.70710678118654752f
#define GELU_RSQRT2PI 0.39894228040143268f

#if CS_HAVE_AVX2
static inline __m256
gelu8 (__m256 x)
{
  __m256 cdf = _mm256_mul_ps (_mm256_set1_ps (0.5f),
                              _mm256_add_ps (_mm256_set1_ps (1.0f),
                                             cs_erf8 (_mm256_mul_ps (x, _mm256_set1_ps (GELU_RSQRT2)))));
  return _mm256_mul_ps (x, cdf);
}

static inline __m256
gelu_grad8 (__m256 x)
{
  __m256 cdf = _mm256_mul_ps (_mm256_set1_ps (0.5f),
                              _mm256_add_ps (_mm256_set1_ps (1.0f),
                                             cs_erf8 (_mm256_mul_ps (x, _mm256_set1_ps (GELU_RSQRT2)))));
  __m256 pdf = _mm256_mul_ps (_mm256_set1_ps (GELU_RSQRT2PI),
                              cs_exp8 (_mm256_mul_ps (_mm256_set1_ps (-0.5f), _mm256_mul_ps (x, x))));
  return _mm256_fmadd_ps (x, pdf, cdf);
}
#endif

static void
gelu_forward_task (int begin, int end, int thread, void *ctx)
{
  const ElemJob *j = ctx;
  size_t i0 = (size_t) begin * CS_ELEM_CHUNK, i1 = MIN (j->N, (size_t) end * CS_ELEM_CHUNK);
  size_t i = i0;

#if CS_HAVE_AVX2
  for (; i + 8 <= i1; i += 8)
    _mm256_storeu_ps (j->out + i, gelu8 (_mm256_loadu_ps (j->inp + i)));
  if (i < i1)
    {
      /* the tail goes through the same vector code, so every element gets one formula */
      float buf[8] = { 0 };
      memcpy (buf, j->inp + i, sizeof (float) * (i1 - i));
      _mm256_storeu_ps (buf, gelu8 (_mm256_loadu_ps (buf)));
      memcpy (j->out + i, buf, sizeof (float) * (i1 - i));
    }
#else
  for (; i < i1; i++)
    j->out[i] = 0.5f * j->inp[i] * (1.0f + erff (j->inp[i] * GELU_RSQRT2));
#endif
}

static void
gelu_backward_task (int begin, int end, int thread, void *ctx)
{
  const ElemJob *j = ctx;
  size_t i0 = (size_t) begin * CS_ELEM_CHUNK, i1 = MIN (j->N, (size_t) end * CS_ELEM_CHUNK);
  size_t i = i0;

#if CS_HAVE_AVX2
  for (; i + 8 <= i1; i += 8)
    {
      __m256 g = gelu_grad8 (_mm256_loadu_ps (j->inp + i));
      _mm256_storeu_ps (j->out + i, _mm256_fmadd_ps (g, _mm256_loadu_ps (j->dout + i),
                                                     _mm256_loadu_ps (j->out + i)));
    }
  if (i < i1)
    {
      float buf[8] = { 0 };
      memcpy (buf, j->inp + i, sizeof (float) * (i1 - i));
      _mm256_storeu_ps (buf, gelu_grad8 (_mm256_loadu_ps (buf)));
      for (size_t k = i; k < i1; k++)
        j->out[k] += buf[k - i] * j->dout[k];
    }
#else
  for (; i < i1; i++)
    {
      float x = j->inp[i];
      float cdf = 0.5f * (1.0f + erff (x * GELU_RSQRT2));
      float pdf = GELU_RSQRT2PI * expf (-0.5f * x * x);
      j->out[i] += (cdf + x * pdf) * j->dout[i];
    }
#endif
}

static int
elem_tasks (size_t N)
{
  return (int) ((N + CS_ELEM_CHUNK - 1) / CS_ELEM_CHUNK);
}

void
cs_cpu_gelu_forward (CsPool *pool, float *out, const float *inp, size_t N)
{
  ElemJob job = { out, inp, NULL, N };
  cs_pool_run (pool, elem_tasks (N), gelu_forward_task, &job);
}

void
cs_cpu_gelu_backward (CsPool *pool, float *dinp, const float *inp, const float *dout, size_t N)
{
  ElemJob job = { dinp, inp, dout, N };
  cs_pool_run (pool, elem_tasks (N), gelu_backward_task, &job);
}

/* ---------------------------------------------------------------- residual adds */

typedef struct
{
  float *out;
  const float *a, *b;
  size_t N;
} AddJob;

static void
add_task (int begin, int end, int thread, void *ctx)
{
  const AddJob *j = ctx;
  size_t i1 = MIN (j->N, (size_t) end * CS_ELEM_CHUNK);

  for (size_t i = (size_t) begin * CS_ELEM_CHUNK; i < i1; i++)
    j->out[i] = j->a[i] + j->b[i];
}

void
cs_cpu_add (CsPool *pool, float *out, const float *a, const float *b, size_t N)
{
  AddJob job = { out, a, b, N };
  cs_pool_run (pool, elem_tasks (N), add_task, &job);
}

void
cs_cpu_add_inplace (CsPool *pool, float *acc, const float *x, size_t N)
{
  AddJob job = { acc, acc, x, N };
  cs_pool_run (pool, elem_tasks (N), add_task, &job);
}

/* ---------------------------------------------------------------- tokens */

void
cs_cpu_embed_forward (CsPool *pool, float *x, const float *cls, const float *pos,
                      const int *token_patch, int T, int C)
{
  for (int t = 0; t < T; t++)
    {
      float *row = x + (size_t) t * C;
      if (token_patch[t] < 0)
        memcpy (row, cls, sizeof (float) * C);
      else
        {
          const float *p = pos + (size_t) token_patch[t] * C;
          for (int c = 0; c < C; c++)
            row[c] += p[c];
        }
    }
}

void
cs_cpu_embed_backward (CsPool *pool, float *dcls, float *dx, const int *token_patch,
                       int T, int C)
{
  for (int t = 0; t < T; t++)
    if (token_patch[t] < 0)
      {
        float *row = dx + (size_t) t * C;
        for (int c = 0; c < C; c++)
          dcls[c] += row[c];
        memset (row, 0, sizeof (float) * C);
      }
}

void
cs_cpu_scatter_forward (CsPool *pool, float *x, const float *y, const float *mask_token,
                        const float *pos, const int *src, const int *patch, int T, int C)
{
  for (int t = 0; t < T; t++)
    {
      float *row = x + (size_t) t * C;
      const float *from = src[t] >= 0 ? y + (size_t) src[t] * C : mask_token;
      if (patch[t] >= 0)
        {
          const float *p = pos + (size_t) patch[t] * C;
          for (int c = 0; c < C; c++)
            row[c] = from[c] + p[c];
        }
      else
        memcpy (row, from, sizeof (float) * C);
    }
}

void
cs_cpu_scatter_backward (CsPool *pool, float *dy, float *dmask_token, const float *dx,
                         const int *src, int T, int C)
{
  for (int t = 0; t < T; t++)
    {
      const float *row = dx + (size_t) t * C;
      float *to = src[t] >= 0 ? dy + (size_t) src[t] * C : dmask_token;
      for (int c = 0; c < C; c++)
        to[c] += row[c];
    }
}

/* ---------------------------------------------------------------- head loss */

double
cs_cpu_sigmoid_loss (CsPool *pool, float *pred, float *dlogit, const float *logit,
                     const float *target, const float *coef, float grad_scale, int T, int K)
{
  double loss = 0.0;

  for (int t = 0; t < T; t++)
    {
      const float *z = logit + (size_t) t * K, *y = target + (size_t) t * K;
      float *p = pred + (size_t) t * K;
      float *dz = dlogit != NULL ? dlogit + (size_t) t * K : NULL;
      float a = coef[t];
      double row = 0.0;

      for (int k = 0; k < K; k++)
        {
          float s = 1.0f / (1.0f + expf (-z[k]));
          float e = s - y[k];
          p[k] = s;
          row += (double) e * e;
          if (dz != NULL)
            dz[k] = grad_scale * a * 2.0f * e * s * (1.0f - s);
        }
      loss += a * row;
    }
  return loss;
}

/* ---------------------------------------------------------------- Adam */

typedef struct
{
  float *p, *m, *v;
  const float *g;
  size_t N;
  float lr, b1, b2, eps, bc1, bc2_sqrt;
} AdamJob;

static void
adam_task (int begin, int end, int thread, void *ctx)
{
  const AdamJob *j = ctx;
  size_t i1 = MIN (j->N, (size_t) end * CS_ELEM_CHUNK);
  float step_size = j->lr / j->bc1;

  for (size_t i = (size_t) begin * CS_ELEM_CHUNK; i < i1; i++)
    {
      float g = j->g[i];
      float m = j->b1 * j->m[i] + (1.0f - j->b1) * g;
      float v = j->b2 * j->v[i] + (1.0f - j->b2) * g * g;
      j->m[i] = m;
      j->v[i] = v;
      /* torch.optim.Adam: p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps) */
      j->p[i] -= step_size * m / (sqrtf (v) / j->bc2_sqrt + j->eps);
    }
}

void
cs_cpu_adam (CsPool *pool, float *params, const float *grads, float *m, float *v, size_t N,
             float lr, float beta1, float beta2, float eps, long step)
{
  AdamJob job = { params, m, v, grads, N, lr, beta1, beta2, eps,
                  (float) (1.0 - pow (beta1, (double) step)),
                  (float) sqrt (1.0 - pow (beta2, (double) step)) };

  cs_pool_run (pool, elem_tasks (N), adam_task, &job);
}

/* ---------------------------------------------------------------- position embedding */

void
cs_pos_embed_sincos (float *pos, int G, int D)
{
  int half = D / 2, quarter = D / 4;

  for (int prow = 0; prow < G; prow++)
    for (int pcol = 0; pcol < G; pcol++)
      {
        float *e = pos + ((size_t) prow * G + pcol) * D;
        for (int i = 0; i < quarter; i++)
          {
            /* omega in double, as MAE's numpy code computes it */
            double omega = 1.0 / pow (10000.0, (double) i / quarter);
            e[i] = (float) sin (pcol * omega);
            e[quarter + i] = (float) cos (pcol * omega);
            e[half + i] = (float) sin (prow * omega);
            e[half + quarter + i] = (float) cos (prow * omega);
          }
      }
}
