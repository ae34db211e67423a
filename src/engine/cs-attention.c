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
  CsPool *pool;
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

/* Scores of the 8 queries of qt against one key: two 4-FMA chains, so the latency of one
 * key's dot product does not serialise the loop. */
static inline __m256
score8 (const __m256 qt[HD], const float *kk)
{
  __m256 a = _mm256_mul_ps (qt[0], _mm256_broadcast_ss (kk));
  __m256 b = _mm256_mul_ps (qt[4], _mm256_broadcast_ss (kk + 4));
  a = _mm256_fmadd_ps (qt[1], _mm256_broadcast_ss (kk + 1), a);
  b = _mm256_fmadd_ps (qt[5], _mm256_broadcast_ss (kk + 5), b);
  a = _mm256_fmadd_ps (qt[2], _mm256_broadcast_ss (kk + 2), a);
  b = _mm256_fmadd_ps (qt[6], _mm256_broadcast_ss (kk + 6), b);
  a = _mm256_fmadd_ps (qt[3], _mm256_broadcast_ss (kk + 3), a);
  b = _mm256_fmadd_ps (qt[7], _mm256_broadcast_ss (kk + 7), b);
  return _mm256_add_ps (a, b);
}

/* Scores are kept in base 2 (queries pre-scaled by scale * log2 e), so softmax needs 2^x. */
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
      float mxs[8] __attribute__ ((aligned (32)));
      __m256 qt[HD], acc[HD], mx = _mm256_set1_ps (-INFINITY), l = _mm256_setzero_ps ();

      transpose_block (tr, Q, q0, L, scale * 1.44269504088896341f);
      for (int d = 0; d < HD; d++)
        {
          qt[d] = _mm256_load_ps (tr[d]);
          acc[d] = _mm256_setzero_ps ();
        }
      /* four keys per step, their chains interleaved, so the core always has
       * independent work while one key's dot product or exponential is in flight */
      {
        int k = 0;
        for (; k + 4 <= L; k += 4)
          {
            const float *kk = K + (size_t) k * HD;
            __m256 s0 = _mm256_mul_ps (qt[0], _mm256_broadcast_ss (kk));
            __m256 s1 = _mm256_mul_ps (qt[0], _mm256_broadcast_ss (kk + HD));
            __m256 s2 = _mm256_mul_ps (qt[0], _mm256_broadcast_ss (kk + 2 * HD));
            __m256 s3 = _mm256_mul_ps (qt[0], _mm256_broadcast_ss (kk + 3 * HD));
            for (int d = 1; d < HD; d++)
              {
                s0 = _mm256_fmadd_ps (qt[d], _mm256_broadcast_ss (kk + d), s0);
                s1 = _mm256_fmadd_ps (qt[d], _mm256_broadcast_ss (kk + HD + d), s1);
                s2 = _mm256_fmadd_ps (qt[d], _mm256_broadcast_ss (kk + 2 * HD + d), s2);
                s3 = _mm256_fmadd_ps (qt[d], _mm256_broadcast_ss (kk + 3 * HD + d), s3);
              }
            _mm256_store_ps (S + (size_t) k * 8, s0);
            _mm256_store_ps (S + (size_t) k * 8 + 8, s1);
            _mm256_store_ps (S + (size_t) k * 8 + 16, s2);
            _mm256_store_ps (S + (size_t) k * 8 + 24, s3);
            mx = _mm256_max_ps (mx, _mm256_max_ps (_mm256_max_ps (s0, s1),
                                                   _mm256_max_ps (s2, s3)));
          }
        for (; k < L; k++)
          {
            __m256 sk = score8 (qt, K + (size_t) k * HD);
            _mm256_store_ps (S + (size_t) k * 8, sk);
            mx = _mm256_max_ps (mx, sk);
          }
        k = 0;
        for (; k + 4 <= L; k += 4)
          {
            const float *v = V + (size_t) k * HD;
            __m256 p[4];
            cs_exp2_8x4 (p, _mm256_sub_ps (_mm256_load_ps (S + (size_t) k * 8), mx),
                         _mm256_sub_ps (_mm256_load_ps (S + (size_t) k * 8 + 8), mx),
                         _mm256_sub_ps (_mm256_load_ps (S + (size_t) k * 8 + 16), mx),
                         _mm256_sub_ps (_mm256_load_ps (S + (size_t) k * 8 + 24), mx));
            l = _mm256_add_ps (l, _mm256_add_ps (_mm256_add_ps (p[0], p[1]),
                                                 _mm256_add_ps (p[2], p[3])));
            for (int d = 0; d < HD; d++)
              {
                __m256 a = _mm256_mul_ps (p[0], _mm256_broadcast_ss (v + d));
                __m256 b = _mm256_mul_ps (p[1], _mm256_broadcast_ss (v + HD + d));
                a = _mm256_fmadd_ps (p[2], _mm256_broadcast_ss (v + 2 * HD + d), a);
                b = _mm256_fmadd_ps (p[3], _mm256_broadcast_ss (v + 3 * HD + d), b);
                acc[d] = _mm256_add_ps (acc[d], _mm256_add_ps (a, b));
              }
          }
        for (; k < L; k++)
          {
            const float *v = V + (size_t) k * HD;
            __m256 p = cs_exp2_8 (_mm256_sub_ps (_mm256_load_ps (S + (size_t) k * 8), mx));
            l = _mm256_add_ps (l, p);
            for (int d = 0; d < HD; d++)
              acc[d] = _mm256_fmadd_ps (p, _mm256_broadcast_ss (v + d), acc[d]);
          }
      }
      {
        __m256 rl = _mm256_div_ps (_mm256_set1_ps (1.0f), l);
        for (int d = 0; d < HD; d++)
          _mm256_store_ps (res[d], _mm256_mul_ps (acc[d], rl));
        _mm256_store_ps (lres, l);
        _mm256_store_ps (mxs, mx);
        for (int lane = 0; lane < 8 && q0 + lane < L; lane++)
          {
            float *o = j->out + (size_t) (off + q0 + lane) * j->C + h * HD;
            for (int d = 0; d < HD; d++)
              o[d] = res[d][lane];
            /* natural-log lse: (max + log2 l) ln 2 */
            j->lse[(size_t) h * j->T + off + q0 + lane] =
              (float) ((mxs[lane] + log2 (lres[lane])) * G_LN2);
          }
      }
    }
}

static void
attention_backward_avx2 (const AttentionJob *j, int off, int L, int h, float *scratch)
{
  int C3 = 3 * j->C;
  float scale = 1.0f / sqrtf ((float) HD);
  const float log2e = 1.44269504088896341f;
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

      transpose_block (qtr, Q, q0, L, log2e);
      transpose_block (otr, dO, q0, L, 1.0f);
      for (int lane = 0; lane < nq; lane++)
        {
          const float *o = j->fout + (size_t) (off + q0 + lane) * j->C + h * HD;
          const float *g = dO + (size_t) (q0 + lane) * HD;
          float D = 0.0f;
          for (int d = 0; d < HD; d++)
            D += g[d] * o[d];
          Dv[lane] = D;
          lse[lane] = j->flse[(size_t) h * j->T + off + q0 + lane] * log2e;
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
      {
        int k = 0;
        for (; k + 4 <= L; k += 4)
          {
            const float *kk = K + (size_t) k * HD, *vv = V + (size_t) k * HD;
            __m256 sc[4], dp[4], p[4], ds[4];
            for (int i = 0; i < 4; i++)
              {
                sc[i] = _mm256_mul_ps (qt[0], _mm256_broadcast_ss (kk + i * HD));
                dp[i] = _mm256_mul_ps (ot[0], _mm256_broadcast_ss (vv + i * HD));
              }
            for (int d = 1; d < HD; d++)
              for (int i = 0; i < 4; i++)
                {
                  sc[i] = _mm256_fmadd_ps (qt[d], _mm256_broadcast_ss (kk + i * HD + d), sc[i]);
                  dp[i] = _mm256_fmadd_ps (ot[d], _mm256_broadcast_ss (vv + i * HD + d), dp[i]);
                }
            cs_exp2_8x4 (p, _mm256_sub_ps (sc[0], vlse), _mm256_sub_ps (sc[1], vlse),
                         _mm256_sub_ps (sc[2], vlse), _mm256_sub_ps (sc[3], vlse));
            for (int i = 0; i < 4; i++)
              {
                ds[i] = _mm256_mul_ps (p[i], _mm256_sub_ps (dp[i], vD));
                _mm256_store_ps (P + (size_t) (k + i) * 8, p[i]);
                _mm256_store_ps (DS + (size_t) (k + i) * 8, ds[i]);
              }
            for (int d = 0; d < HD; d++)
              {
                __m256 a = _mm256_mul_ps (ds[0], _mm256_broadcast_ss (kk + d));
                __m256 b = _mm256_mul_ps (ds[1], _mm256_broadcast_ss (kk + HD + d));
                a = _mm256_fmadd_ps (ds[2], _mm256_broadcast_ss (kk + 2 * HD + d), a);
                b = _mm256_fmadd_ps (ds[3], _mm256_broadcast_ss (kk + 3 * HD + d), b);
                dqt[d] = _mm256_add_ps (dqt[d], _mm256_add_ps (a, b));
              }
          }
        for (; k < L; k++)
          {
            const float *kk = K + (size_t) k * HD;
            __m256 sk = score8 (qt, kk);
            __m256 dpk = score8 (ot, V + (size_t) k * HD);
            __m256 pk = cs_exp2_8 (_mm256_sub_ps (sk, vlse));
            __m256 dsk = _mm256_mul_ps (pk, _mm256_sub_ps (dpk, vD));
            _mm256_store_ps (P + (size_t) k * 8, pk);
            _mm256_store_ps (DS + (size_t) k * 8, dsk);
            for (int d = 0; d < HD; d++)
              dqt[d] = _mm256_fmadd_ps (dsk, _mm256_broadcast_ss (kk + d), dqt[d]);
          }
      }
      for (int d = 0; d < HD; d++)
        _mm256_store_ps (res[d], _mm256_mul_ps (dqt[d], _mm256_set1_ps (scale)));
      for (int lane = 0; lane < nq; lane++)
        {
          float *dq = j->dqkv + (size_t) (off + q0 + lane) * C3 + h * HD;
          for (int d = 0; d < HD; d++)
            dq[d] += res[d][lane];
        }
      /* per key, head channels in the lanes: dV_k += sum_i p_ik dO_i, dK_k += ds_ik q_i;
       * two chains each, for the same latency reason as score8 */
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
            __m256 dva = _mm256_load_ps (dV + (size_t) k * HD), dvb = _mm256_setzero_ps ();
            __m256 dka = _mm256_load_ps (dK + (size_t) k * HD), dkb = _mm256_setzero_ps ();
            for (int lane = 0; lane < 8; lane += 2)
              {
                dva = _mm256_fmadd_ps (_mm256_broadcast_ss (pk + lane), orow[lane], dva);
                dvb = _mm256_fmadd_ps (_mm256_broadcast_ss (pk + lane + 1), orow[lane + 1], dvb);
                dka = _mm256_fmadd_ps (_mm256_broadcast_ss (dsk + lane), qrow[lane], dka);
                dkb = _mm256_fmadd_ps (_mm256_broadcast_ss (dsk + lane + 1), qrow[lane + 1], dkb);
              }
            _mm256_store_ps (dV + (size_t) k * HD, _mm256_add_ps (dva, dvb));
            _mm256_store_ps (dK + (size_t) k * HD, _mm256_add_ps (dka, dkb));
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

#if CS_HAVE_AVX2
static gboolean
attention_simd_ok (const AttentionJob *j)
{
  return j->use_simd && j->C / j->NH == 8;
}
#endif

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
          float *scratch = cs_pool_scratch (j->pool, thread, ((size_t) L + 8) * 32 * sizeof (float));
          attention_forward_avx2 (j, off, L, h, scratch);
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
          float *scratch = cs_pool_scratch (j->pool, thread, ((size_t) L + 8) * 64 * sizeof (float));
          attention_backward_avx2 (j, off, L, h, scratch);
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
  AttentionJob job = { .pool = pool, .out = out, .lse = lse, .qkv = qkv, .seq_off = seq_off,
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
  AttentionJob job = { .pool = pool, .dqkv = dqkv, .dout = dout, .qkv = qkv, .fout = out, .flse = lse,
                       .seq_off = seq_off, .seq_len = seq_len, .n_seq = n_seq, .T = T,
                       .C = C, .NH = NH, .use_simd = use_simd };

  cs_pool_run (pool, n_seq * NH, attention_backward_task, &job);
}
