/* cs-attention.c: multi-head self-attention for SMALL head dims, forward and backward.
 *
 * Not batched GEMMs: with head dim 8 a GEMM would spend its time packing. The AVX2 path
 * (head dim 8) puts 8 QUERIES in the 8 lanes of a register: a score row for 8 queries
 * against key j is 8 FMAs of the transposed query block with k_j's broadcast channels;
 * softmax takes two passes over the scores (row max, then exp + weighted V sum), and
 * backward recomputes probabilities from the saved log-sum-exp (flash-attention style),
 * so no T x T matrix is ever stored. Work is split over (sequence, head) pairs. */
#include "cs-cpu-ops.h"

#include <math.h>
#include <string.h>

#include "cs-simd.h"

typedef struct
{
  float *out, *lse, *dqkv;
  const float *qkv, *dout, *fout, *flse;
  const int *seq_off, *seq_len;
  int n_seq, T, C, NH;
  gboolean use_simd;
} AttentionJob;

/* ---------------------------------------------------------------- scalar reference */

static void
attention_forward_scalar (const AttentionJob *j, int off, int L, int h)
{
  int C3 = 3 * j->C, hd = j->C / j->NH;
  float scale = 1.0f / sqrtf ((float) hd);
  float *s = g_new (float, L);

  for (int i = 0; i < L; i++)
    {
      const float *q = j->qkv + (size_t) (off + i) * C3 + h * hd;
      float *o = j->out + (size_t) (off + i) * j->C + h * hd;
      float mx = -INFINITY, l = 0.0f;

      for (int k = 0; k < L; k++)
        {
          const float *kk = j->qkv + (size_t) (off + k) * C3 + j->C + h * hd;
          float dot = 0.0f;
          for (int d = 0; d < hd; d++)
            dot += q[d] * kk[d];
          s[k] = dot * scale;
          mx = MAX (mx, s[k]);
        }
      memset (o, 0, sizeof (float) * hd);
      for (int k = 0; k < L; k++)
        {
          const float *v = j->qkv + (size_t) (off + k) * C3 + 2 * j->C + h * hd;
          float p = expf (s[k] - mx);
          l += p;
          for (int d = 0; d < hd; d++)
            o[d] += p * v[d];
        }
      for (int d = 0; d < hd; d++)
        o[d] /= l;
      j->lse[(size_t) h * j->T + off + i] = mx + logf (l);
    }
  g_free (s);
}

static void
attention_backward_scalar (const AttentionJob *j, int off, int L, int h)
{
  int C3 = 3 * j->C, hd = j->C / j->NH;
  float scale = 1.0f / sqrtf ((float) hd);

  for (int i = 0; i < L; i++)
    {
      const float *q = j->qkv + (size_t) (off + i) * C3 + h * hd;
      const float *o = j->fout + (size_t) (off + i) * j->C + h * hd;
      const float *dO = j->dout + (size_t) (off + i) * j->C + h * hd;
      float *dq = j->dqkv + (size_t) (off + i) * C3 + h * hd;
      float lse = j->flse[(size_t) h * j->T + off + i], D = 0.0f;

      for (int d = 0; d < hd; d++)
        D += dO[d] * o[d];
      for (int k = 0; k < L; k++)
        {
          const float *kk = j->qkv + (size_t) (off + k) * C3 + j->C + h * hd;
          const float *v = kk + j->C;
          float *dk = j->dqkv + (size_t) (off + k) * C3 + j->C + h * hd;
          float *dv = dk + j->C;
          float dot = 0.0f, dp = 0.0f, p, ds;

          for (int d = 0; d < hd; d++)
            {
              dot += q[d] * kk[d];
              dp += dO[d] * v[d];
            }
          p = expf (dot * scale - lse);
          ds = p * (dp - D) * scale;
          for (int d = 0; d < hd; d++)
            {
              dv[d] += p * dO[d];
              dq[d] += ds * kk[d];
              dk[d] += ds * q[d];
            }
        }
    }
}

/* ---------------------------------------------------------------- AVX2, head dim 8 */

#if CS_HAVE_AVX2
#define HD 8

/* rows[L][8] = channels base .. base+7 of rows off.. of a [T, stride] matrix */
static void
gather_head (float *rows, const float *m, int stride, int base, int off, int L)
{
  for (int i = 0; i < L; i++)
    memcpy (rows + (size_t) i * HD, m + (size_t) (off + i) * stride + base, sizeof (float) * HD);
}

/* tr[d][lane] = rows[q0 + lane][d] * mul, zero for lanes past L */
static void
transpose_block (float tr[HD][8], const float *rows, int q0, int L, float mul)
{
  for (int lane = 0; lane < 8; lane++)
    for (int d = 0; d < HD; d++)
      tr[d][lane] = q0 + lane < L ? rows[(size_t) (q0 + lane) * HD + d] * mul : 0.0f;
}

static void
attention_forward_avx2 (const AttentionJob *j, int off, int L, int h, float *scratch)
{
  int C3 = 3 * j->C;
  float scale = 1.0f / sqrtf ((float) HD);
  float *K = scratch, *V = K + (size_t) L * HD, *Q = V + (size_t) L * HD;
  float *S = Q + (size_t) L * HD; /* [L][8] scores of one query block */

  gather_head (Q, j->qkv, C3, h * HD, off, L);
  gather_head (K, j->qkv, C3, j->C + h * HD, off, L);
  gather_head (V, j->qkv, C3, 2 * j->C + h * HD, off, L);

  for (int q0 = 0; q0 < L; q0 += 8)
    {
      float tr[HD][8] __attribute__ ((aligned (32)));
      float res[HD][8] __attribute__ ((aligned (32)));
      float lres[8] __attribute__ ((aligned (32)));
      __m256 qt[HD], acc[HD], mx = _mm256_set1_ps (-INFINITY), l = _mm256_setzero_ps ();

      transpose_block (tr, Q, q0, L, scale);
      for (int d = 0; d < HD; d++)
        {
          qt[d] = _mm256_load_ps (tr[d]);
          acc[d] = _mm256_setzero_ps ();
        }
      for (int k = 0; k < L; k++)
        {
          const float *kk = K + (size_t) k * HD;
          __m256 s = _mm256_mul_ps (qt[0], _mm256_broadcast_ss (kk));
          for (int d = 1; d < HD; d++)
            s = _mm256_fmadd_ps (qt[d], _mm256_broadcast_ss (kk + d), s);
          _mm256_store_ps (S + (size_t) k * 8, s);
          mx = _mm256_max_ps (mx, s);
        }
      for (int k = 0; k < L; k++)
        {
          const float *v = V + (size_t) k * HD;
          __m256 p = cs_exp8 (_mm256_sub_ps (_mm256_load_ps (S + (size_t) k * 8), mx));
          l = _mm256_add_ps (l, p);
          for (int d = 0; d < HD; d++)
            acc[d] = _mm256_fmadd_ps (p, _mm256_broadcast_ss (v + d), acc[d]);
        }
      {
        __m256 rl = _mm256_div_ps (_mm256_set1_ps (1.0f), l);
        float mxs[8] __attribute__ ((aligned (32)));
        for (int d = 0; d < HD; d++)
          _mm256_store_ps (res[d], _mm256_mul_ps (acc[d], rl));
        _mm256_store_ps (lres, l);
        _mm256_store_ps (mxs, mx);
        for (int lane = 0; lane < 8 && q0 + lane < L; lane++)
          {
            float *o = j->out + (size_t) (off + q0 + lane) * j->C + h * HD;
            for (int d = 0; d < HD; d++)
              o[d] = res[d][lane];
            j->lse[(size_t) h * j->T + off + q0 + lane] = mxs[lane] + logf (lres[lane]);
          }
      }
    }
}

static void
attention_backward_avx2 (const AttentionJob *j, int off, int L, int h, float *scratch)
{
  int C3 = 3 * j->C;
  float scale = 1.0f / sqrtf ((float) HD);
  float *K = scratch, *V = K + (size_t) L * HD, *Q = V + (size_t) L * HD;
  float *dO = Q + (size_t) L * HD, *dK = dO + (size_t) L * HD, *dV = dK + (size_t) L * HD;
  float *P = dV + (size_t) L * HD, *DS = P + (size_t) L * 8;

  gather_head (Q, j->qkv, C3, h * HD, off, L);
  gather_head (K, j->qkv, C3, j->C + h * HD, off, L);
  gather_head (V, j->qkv, C3, 2 * j->C + h * HD, off, L);
  gather_head (dO, j->dout, j->C, h * HD, off, L);
  for (int i = 0; i < L * HD; i++)
    Q[i] *= scale; /* s = q_scaled . k: dK = sum ds q_scaled, dQ = scale sum ds k */
  memset (dK, 0, sizeof (float) * 2 * L * HD);

  for (int q0 = 0; q0 < L; q0 += 8)
    {
      float qtr[HD][8] __attribute__ ((aligned (32)));
      float otr[HD][8] __attribute__ ((aligned (32)));
      float res[HD][8] __attribute__ ((aligned (32)));
      float lse[8] __attribute__ ((aligned (32))) = { 0 };
      float Dv[8] __attribute__ ((aligned (32))) = { 0 };
      __m256 qt[HD], ot[HD], dqt[HD], vlse, vD;
      int nq = MIN (8, L - q0);

      transpose_block (qtr, Q, q0, L, 1.0f);
      transpose_block (otr, dO, q0, L, 1.0f);
      for (int lane = 0; lane < nq; lane++)
        {
          const float *o = j->fout + (size_t) (off + q0 + lane) * j->C + h * HD;
          const float *g = dO + (size_t) (q0 + lane) * HD;
          float D = 0.0f;
          for (int d = 0; d < HD; d++)
            D += g[d] * o[d];
          Dv[lane] = D;
          lse[lane] = j->flse[(size_t) h * j->T + off + q0 + lane];
        }
      vlse = _mm256_load_ps (lse);
      vD = _mm256_load_ps (Dv);
      for (int d = 0; d < HD; d++)
        {
          qt[d] = _mm256_load_ps (qtr[d]);
          ot[d] = _mm256_load_ps (otr[d]);
          dqt[d] = _mm256_setzero_ps ();
        }
      /* per key: probabilities and score gradients of the 8 queries; dQ on the way */
      for (int k = 0; k < L; k++)
        {
          const float *kk = K + (size_t) k * HD, *v = V + (size_t) k * HD;
          __m256 s = _mm256_mul_ps (qt[0], _mm256_broadcast_ss (kk));
          __m256 dp = _mm256_mul_ps (ot[0], _mm256_broadcast_ss (v));
          __m256 p, ds;
          for (int d = 1; d < HD; d++)
            {
              s = _mm256_fmadd_ps (qt[d], _mm256_broadcast_ss (kk + d), s);
              dp = _mm256_fmadd_ps (ot[d], _mm256_broadcast_ss (v + d), dp);
            }
          p = cs_exp8 (_mm256_sub_ps (s, vlse));
          ds = _mm256_mul_ps (p, _mm256_sub_ps (dp, vD));
          _mm256_store_ps (P + (size_t) k * 8, p);
          _mm256_store_ps (DS + (size_t) k * 8, ds);
          for (int d = 0; d < HD; d++)
            dqt[d] = _mm256_fmadd_ps (ds, _mm256_broadcast_ss (kk + d), dqt[d]);
        }
      for (int d = 0; d < HD; d++)
        _mm256_store_ps (res[d], _mm256_mul_ps (dqt[d], _mm256_set1_ps (scale)));
      for (int lane = 0; lane < nq; lane++)
        {
          float *dq = j->dqkv + (size_t) (off + q0 + lane) * C3 + h * HD;
          for (int d = 0; d < HD; d++)
            dq[d] += res[d][lane];
        }
      /* per key, head channels in the lanes: dV_k += sum_i p_ik dO_i, dK_k += ds_ik q_i */
      {
        __m256 orow[8], qrow[8];
        for (int lane = 0; lane < 8; lane++)
          {
            orow[lane] = lane < nq ? _mm256_loadu_ps (dO + (size_t) (q0 + lane) * HD)
                                   : _mm256_setzero_ps ();
            qrow[lane] = lane < nq ? _mm256_loadu_ps (Q + (size_t) (q0 + lane) * HD)
                                   : _mm256_setzero_ps ();
          }
        for (int k = 0; k < L; k++)
          {
            const float *pk = P + (size_t) k * 8, *dsk = DS + (size_t) k * 8;
            __m256 dv = _mm256_load_ps (dV + (size_t) k * HD);
            __m256 dk = _mm256_load_ps (dK + (size_t) k * HD);
            for (int lane = 0; lane < 8; lane++)
              {
                dv = _mm256_fmadd_ps (_mm256_broadcast_ss (pk + lane), orow[lane], dv);
                dk = _mm256_fmadd_ps (_mm256_broadcast_ss (dsk + lane), qrow[lane], dk);
              }
            _mm256_store_ps (dV + (size_t) k * HD, dv);
            _mm256_store_ps (dK + (size_t) k * HD, dk);
          }
      }
    }
  for (int k = 0; k < L; k++)
    {
      float *dk = j->dqkv + (size_t) (off + k) * C3 + j->C + h * HD, *dv = dk + j->C;
      for (int d = 0; d < HD; d++)
        {
          dk[d] += dK[(size_t) k * HD + d];
          dv[d] += dV[(size_t) k * HD + d];
        }
    }
}
#endif

/* ---------------------------------------------------------------- dispatch */

static gboolean
attention_simd_ok (const AttentionJob *j)
{
#if CS_HAVE_AVX2
  return j->use_simd && j->C / j->NH == 8;
#else
  return FALSE;
#endif
}

static void
attention_forward_task (int begin, int end, int thread, void *ctx)
{
  const AttentionJob *j = ctx;

  for (int task = begin; task < end; task++)
    {
      int b = task / j->NH, h = task % j->NH;
      int off = j->seq_off[b], L = j->seq_len[b];

      if (L <= 0)
        continue;
#if CS_HAVE_AVX2
      if (attention_simd_ok (j))
        {
          float *scratch = g_aligned_alloc (((size_t) L + 8) * 32, sizeof (float), 32);
          attention_forward_avx2 (j, off, L, h, scratch);
          g_aligned_free (scratch);
          continue;
        }
#endif
      attention_forward_scalar (j, off, L, h);
    }
}

static void
attention_backward_task (int begin, int end, int thread, void *ctx)
{
  const AttentionJob *j = ctx;

  for (int task = begin; task < end; task++)
    {
      int b = task / j->NH, h = task % j->NH;
      int off = j->seq_off[b], L = j->seq_len[b];

      if (L <= 0)
        continue;
#if CS_HAVE_AVX2
      if (attention_simd_ok (j))
        {
          float *scratch = g_aligned_alloc (((size_t) L + 8) * 64, sizeof (float), 32);
          attention_backward_avx2 (j, off, L, h, scratch);
          g_aligned_free (scratch);
          continue;
        }
#endif
      attention_backward_scalar (j, off, L, h);
    }
}

void
cs_cpu_attention_forward (CsPool *pool, float *out, float *lse, const float *qkv,
                          const int *seq_off, const int *seq_len, int n_seq,
                          int T, int C, int NH, gboolean use_simd)
{
  AttentionJob job = { .out = out, .lse = lse, .qkv = qkv, .seq_off = seq_off,
                       .seq_len = seq_len, .n_seq = n_seq, .T = T, .C = C, .NH = NH,
                       .use_simd = use_simd };

  cs_pool_run (pool, n_seq * NH, attention_forward_task, &job);
}

void
cs_cpu_attention_backward (CsPool *pool, float *dqkv, const float *dout, const float *qkv,
                           const float *out, const float *lse, const int *seq_off,
                           const int *seq_len, int n_seq, int T, int C, int NH,
                           gboolean use_simd)
{
  AttentionJob job = { .dqkv = dqkv, .dout = dout, .qkv = qkv, .fout = out, .flse = lse,
                       .seq_off = seq_off, .seq_len = seq_len, .n_seq = n_seq, .T = T,
                       .C = C, .NH = NH, .use_simd = use_simd };

  cs_pool_run (pool, n_seq * NH, attention_backward_task, &job);
}
