/* Finite-difference checks of every CPU op's backward, and known answers for the rest.
 *
 * Method: for an op y = f(x), the scalar L = sum(y * R) with fixed random R; the analytic
 * gradient comes from the op's backward with dout = R; the numeric one from central
 * differences in float with step h, the loss summed in double. Tolerance per element:
 * |analytic - numeric| <= atol + rtol * max(|analytic|, |numeric|) (stated per check). */
#include <math.h>
#include <string.h>

#include "engine/cs-cpu-ops.h"
#include "engine/cs-model.h"

static CsPool *pool;

static void
fill_uniform (GRand *rng, float *x, size_t n, double lo, double hi)
{
  for (size_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, lo, hi);
}

static double
dot (const float *a, const float *b, size_t n)
{
  double s = 0.0;
  for (size_t i = 0; i < n; i++)
    s += (double) a[i] * b[i];
  return s;
}

typedef double (*LossFunc) (void *ctx);

/* Checks analytic[i] against d loss / d x[i] for up to max_checks indices. */
static void
check_grad (const char *what, float *x, size_t n, const float *analytic, LossFunc loss,
            void *ctx, float h, double atol, double rtol, int max_checks)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (99);
  double worst = 0.0;
  int n_checks = MIN ((size_t) max_checks, n);

  for (int c = 0; c < n_checks; c++)
    {
      size_t i = (size_t) max_checks >= n ? (size_t) c : (size_t) g_rand_int_range (rng, 0, (gint32) n);
      float keep = x[i];
      double lp, lm, num, err;

      x[i] = keep + h;
      lp = loss (ctx);
      x[i] = keep - h;
      lm = loss (ctx);
      x[i] = keep;
      num = (lp - lm) / (2.0 * h);
      err = fabs (num - analytic[i]) / (atol + rtol * MAX (fabs (num), fabs (analytic[i])));
      worst = MAX (worst, err);
      if (err > 1.0)
        g_error ("%s: gradient %zu analytic %.7g numeric %.7g (atol %g rtol %g)", what, i,
                 analytic[i], num, atol, rtol);
    }
  g_test_message ("%s: %d gradients within tolerance (worst %.3f of it)", what, n_checks,
                  worst);
}

/* ---------------------------------------------------------------- linear */

typedef struct
{
  int T, IN, O;
  float *inp, *w, *b, *out, *R;
} LinearCase;

static double
linear_loss (void *ctx)
{
  LinearCase *c = ctx;
  cs_cpu_linear_forward (pool, c->out, c->inp, c->w, c->b, c->T, c->IN, c->O);
  return dot (c->out, c->R, (size_t) c->T * c->O);
}

static void
test_linear (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (1);
  LinearCase c = { 37, 24, 40 };
  size_t nx = (size_t) c.T * c.IN, nw = (size_t) c.O * c.IN, ny = (size_t) c.T * c.O;
  g_autofree float *inp = g_new (float, nx), *w = g_new (float, nw), *b = g_new (float, c.O);
  g_autofree float *out = g_new (float, ny), *R = g_new (float, ny);
  g_autofree float *dinp = g_new0 (float, nx), *dw = g_new0 (float, nw);
  g_autofree float *db = g_new0 (float, c.O);

  c.inp = inp, c.w = w, c.b = b, c.out = out, c.R = R;
  fill_uniform (rng, inp, nx, -1, 1);
  fill_uniform (rng, w, nw, -1, 1);
  fill_uniform (rng, b, c.O, -1, 1);
  fill_uniform (rng, R, ny, -1, 1);
  /* known answer for one element, straight from the definition */
  linear_loss (&c);
  {
    double y = b[3];
    for (int i = 0; i < c.IN; i++)
      y += (double) inp[5 * c.IN + i] * w[3 * c.IN + i];
    g_assert_cmpfloat_with_epsilon (out[5 * c.O + 3], y, 1e-5);
  }
  /* backward accumulates: start from 1 and subtract it afterwards */
  for (size_t i = 0; i < nx; i++)
    dinp[i] = 1.0f;
  cs_cpu_linear_backward (pool, dinp, dw, db, R, inp, w, c.T, c.IN, c.O);
  for (size_t i = 0; i < nx; i++)
    dinp[i] -= 1.0f;
  check_grad ("linear dinp", inp, nx, dinp, linear_loss, &c, 1e-2f, 1e-4, 1e-3, 200);
  check_grad ("linear dw", w, nw, dw, linear_loss, &c, 1e-2f, 1e-4, 1e-3, 200);
  check_grad ("linear db", b, c.O, db, linear_loss, &c, 1e-2f, 1e-4, 1e-3, 200);
}

/* ---------------------------------------------------------------- layernorm */

typedef struct
{
  int T, C;
  float *inp, *w, *b, *out, *mean, *rstd, *R;
} LnCase;

static double
ln_loss (void *ctx)
{
  LnCase *c = ctx;
  cs_cpu_layernorm_forward (pool, c->out, c->mean, c->rstd, c->inp, c->w, c->b, c->T, c->C);
  return dot (c->out, c->R, (size_t) c->T * c->C);
}

static void
test_layernorm (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (2);
  LnCase c = { 130, 24 }; /* > 2 reduction chunks of 64 rows */
  size_t n = (size_t) c.T * c.C;
  g_autofree float *inp = g_new (float, n), *w = g_new (float, c.C), *b = g_new (float, c.C);
  g_autofree float *out = g_new (float, n), *R = g_new (float, n), *mean = g_new (float, c.T);
  g_autofree float *rstd = g_new (float, c.T), *dinp = g_new0 (float, n);
  g_autofree float *dw = g_new0 (float, c.C), *db = g_new0 (float, c.C);

  c.inp = inp, c.w = w, c.b = b, c.out = out, c.R = R, c.mean = mean, c.rstd = rstd;
  fill_uniform (rng, inp, n, -2, 2);
  fill_uniform (rng, w, c.C, 0.5, 1.5);
  fill_uniform (rng, b, c.C, -1, 1);
  fill_uniform (rng, R, n, -1, 1);
  /* known answer: row [1, 2, 3, 4] normalised with eps 1e-5 (biased variance 1.25) */
  {
    float x[4] = { 1, 2, 3, 4 }, one[4] = { 1, 1, 1, 1 }, zero[4] = { 0 }, y[4], m, s;
    cs_cpu_layernorm_forward (pool, y, &m, &s, x, one, zero, 1, 4);
    g_assert_cmpfloat_with_epsilon (y[0], -1.5 / sqrt (1.25 + 1e-5), 1e-6);
    g_assert_cmpfloat_with_epsilon (y[3], 1.5 / sqrt (1.25 + 1e-5), 1e-6);
    g_assert_cmpfloat_with_epsilon (m, 2.5, 1e-7);
  }
  ln_loss (&c);
  cs_cpu_layernorm_backward (pool, dinp, dw, db, R, inp, w, mean, rstd, c.T, c.C);
  check_grad ("layernorm dinp", inp, n, dinp, ln_loss, &c, 1e-2f, 2e-4, 5e-3, 300);
  check_grad ("layernorm dw", w, c.C, dw, ln_loss, &c, 1e-2f, 2e-4, 5e-3, 300);
  check_grad ("layernorm db", b, c.C, db, ln_loss, &c, 1e-2f, 2e-4, 5e-3, 300);
}

/* ---------------------------------------------------------------- attention */

typedef struct
{
  int T, C, NH, n_seq;
  int seq_off[3], seq_len[3];
  float *qkv, *out, *lse, *R;
  gboolean simd;
} AttCase;

static double
att_loss (void *ctx)
{
  AttCase *c = ctx;
  cs_cpu_attention_forward (pool, c->out, c->lse, c->qkv, c->seq_off, c->seq_len, c->n_seq,
                            c->T, c->C, c->NH, c->simd);
  return dot (c->out, c->R, (size_t) c->T * c->C);
}

/* Plain double-precision attention of one (sequence, head), straight from the definition. */
static void
att_reference (const AttCase *c, int s, int h, int i, double *o)
{
  int hd = c->C / c->NH, off = c->seq_off[s], L = c->seq_len[s], C3 = 3 * c->C;
  double mx = -INFINITY, l = 0.0, *sc = g_new (double, L);

  for (int k = 0; k < L; k++)
    {
      double d = 0.0;
      for (int e = 0; e < hd; e++)
        d += (double) c->qkv[(off + i) * C3 + h * hd + e] * c->qkv[(off + k) * C3 + c->C + h * hd + e];
      sc[k] = d / sqrt (hd);
      mx = MAX (mx, sc[k]);
    }
  for (int e = 0; e < hd; e++)
    o[e] = 0.0;
  for (int k = 0; k < L; k++)
    {
      double p = exp (sc[k] - mx);
      l += p;
      for (int e = 0; e < hd; e++)
        o[e] += p * c->qkv[(off + k) * C3 + 2 * c->C + h * hd + e];
    }
  for (int e = 0; e < hd; e++)
    o[e] /= l;
  g_free (sc);
}

static void
run_attention_case (int C, int NH, gboolean simd)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (3);
  AttCase c = { 0, C, NH, 3, { 0, 5, 22 }, { 5, 17, 12 } }; /* lengths not multiples of 8 */
  size_t n3, n;
  g_autofree float *qkv = NULL, *out = NULL, *lse = NULL, *R = NULL, *dqkv = NULL;
  g_autofree char *what = g_strdup_printf ("attention C %d heads %d %s dqkv", C, NH,
                                           simd ? "simd" : "scalar");

  c.T = 34;
  c.simd = simd;
  n3 = (size_t) c.T * 3 * C;
  n = (size_t) c.T * C;
  qkv = g_new (float, n3), out = g_new (float, n), R = g_new (float, n);
  lse = g_new (float, (size_t) NH * c.T), dqkv = g_new0 (float, n3);
  c.qkv = qkv, c.out = out, c.lse = lse, c.R = R;
  fill_uniform (rng, qkv, n3, -1.5, 1.5);
  fill_uniform (rng, R, n, -1, 1);
  att_loss (&c);
  for (int s = 0; s < 3; s++)
    for (int h = 0; h < NH; h++)
      for (int i = 0; i < c.seq_len[s]; i++)
        {
          double o[64];
          att_reference (&c, s, h, i, o);
          for (int e = 0; e < C / NH; e++)
            g_assert_cmpfloat_with_epsilon (out[(c.seq_off[s] + i) * C + h * (C / NH) + e],
                                            o[e], 2e-6);
        }
  cs_cpu_attention_backward (pool, dqkv, R, qkv, out, lse, c.seq_off, c.seq_len, 3, c.T, C,
                             NH, simd);
  check_grad (what, qkv, n3, dqkv, att_loss, &c, 1e-2f, 2e-4, 5e-3, 400);
}

static void
test_attention (void)
{
  run_attention_case (16, 2, TRUE);   /* head dim 8: the AVX2 kernel */
  run_attention_case (16, 2, FALSE);  /* the scalar reference */
  run_attention_case (12, 2, TRUE);   /* head dim 6: falls back to scalar */
}

/* ---------------------------------------------------------------- GELU */

typedef struct
{
  size_t n;
  float *inp, *out, *R;
} GeluCase;

static double
gelu_loss (void *ctx)
{
  GeluCase *c = ctx;
  cs_cpu_gelu_forward (pool, c->out, c->inp, c->n);
  return dot (c->out, c->R, c->n);
}

static void
test_gelu (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (4);
  GeluCase c = { 4100 }; /* two element chunks and a tail */
  g_autofree float *inp = g_new (float, c.n), *out = g_new (float, c.n);
  g_autofree float *R = g_new (float, c.n), *dinp = g_new0 (float, c.n);

  c.inp = inp, c.out = out, c.R = R;
  fill_uniform (rng, inp, c.n, -5, 5);
  fill_uniform (rng, R, c.n, -1, 1);
  gelu_loss (&c);
  for (size_t i = 0; i < c.n; i++)
    {
      double x = inp[i], ref = 0.5 * x * (1.0 + erf (x / sqrt (2.0)));
      if (fabs (out[i] - ref) > 5e-7 * MAX (1.0, fabs (ref)))
        g_error ("gelu(%g) = %.9g, erf formula %.9g", x, out[i], ref);
    }
  cs_cpu_gelu_backward (pool, dinp, inp, R, c.n);
  check_grad ("gelu dinp", inp, c.n, dinp, gelu_loss, &c, 1e-2f, 1e-4, 2e-3, 500);
}

/* ---------------------------------------------------------------- tokens */

static void
test_tokens (void)
{
  /* embed: cls row replaced, patch rows get pos added; backward routes cls grads */
  float x[3 * 2] = { 9, 9, 1, 2, 3, 4 }, cls[2] = { 0.5f, -0.5f };
  float pos[4 * 2] = { 0, 0, 10, 20, 30, 40, 50, 60 };
  int tp[3] = { -1, 2, 1 };
  float dx[3 * 2] = { 1, 2, 3, 4, 5, 6 }, dcls[2] = { 0 };

  cs_cpu_embed_forward (pool, x, cls, pos, tp, 3, 2);
  g_assert_cmpfloat (x[0], ==, 0.5f);
  g_assert_cmpfloat (x[1], ==, -0.5f);
  g_assert_cmpfloat (x[2], ==, 31.0f);
  g_assert_cmpfloat (x[5], ==, 24.0f);
  cs_cpu_embed_backward (pool, dcls, dx, tp, 3, 2);
  g_assert_cmpfloat (dcls[0], ==, 1.0f);
  g_assert_cmpfloat (dcls[1], ==, 2.0f);
  g_assert_cmpfloat (dx[0], ==, 0.0f);
  g_assert_cmpfloat (dx[2], ==, 3.0f);

  /* scatter: visible rows come from y, masked ones from the mask token, plus pos */
  {
    float y[2 * 2] = { 1, 2, 3, 4 }, mask[2] = { 7, 8 }, out[3 * 2], dy[4] = { 0 };
    float dmask[2] = { 0 }, d[3 * 2] = { 1, 1, 2, 2, 3, 3 };
    int src[3] = { 0, -1, 1 }, patch[3] = { -1, 3, 0 };
    cs_cpu_scatter_forward (pool, out, y, mask, pos, src, patch, 3, 2);
    g_assert_cmpfloat (out[0], ==, 1.0f);
    g_assert_cmpfloat (out[2], ==, 57.0f);
    g_assert_cmpfloat (out[3], ==, 68.0f);
    g_assert_cmpfloat (out[4], ==, 3.0f);
    cs_cpu_scatter_backward (pool, dy, dmask, d, src, 3, 2);
    g_assert_cmpfloat (dy[0], ==, 1.0f);
    g_assert_cmpfloat (dy[2], ==, 3.0f);
    g_assert_cmpfloat (dmask[0], ==, 2.0f);
  }
}

/* ---------------------------------------------------------------- sigmoid loss */

typedef struct
{
  int T, K;
  float *logit, *target, *coef, *pred;
} SigCase;

static double
sig_loss (void *ctx)
{
  SigCase *c = ctx;
  return cs_cpu_sigmoid_loss (pool, c->pred, NULL, c->logit, c->target, c->coef, 1.0f, c->T,
                              c->K);
}

static void
test_sigmoid_loss (void)
{
  g_autoptr (GRand) rng = g_rand_new_with_seed (5);
  SigCase c = { 6, 5 };
  float logit[30], target[30], coef[6] = { 0.5f, 0, 1.0f, 0.25f, 0, 2.0f }, pred[30];
  float dlogit[30], dl2[30];
  double l;

  c.logit = logit, c.target = target, c.coef = coef, c.pred = pred;
  fill_uniform (rng, logit, 30, -3, 3);
  fill_uniform (rng, target, 30, 0, 1);
  /* known answer: logit 0 -> 0.5; target 0 -> error 0.25 per value */
  {
    float z[2] = { 0, 0 }, y[2] = { 0, 1 }, a[1] = { 0.1f }, p[2], dz[2];
    l = cs_cpu_sigmoid_loss (pool, p, dz, z, y, a, 1.0f, 1, 2);
    g_assert_cmpfloat_with_epsilon (l, 0.1 * (0.25 + 0.25), 1e-7);
    /* d/dz of a (s - y)^2 = 2 a (s - y) s (1 - s) = 2 0.1 0.5 0.25 */
    g_assert_cmpfloat_with_epsilon (dz[0], 0.025, 1e-7);
    g_assert_cmpfloat_with_epsilon (dz[1], -0.025, 1e-7);
  }
  cs_cpu_sigmoid_loss (pool, pred, dlogit, logit, target, coef, 1.0f, 6, 5);
  cs_cpu_sigmoid_loss (pool, pred, dl2, logit, target, coef, 0.1f, 6, 5);
  for (int i = 0; i < 30; i++)
    {
      g_assert_cmpfloat_with_epsilon (dl2[i], 0.1f * dlogit[i], 1e-8);
      if (coef[i / 5] == 0.0f)
        g_assert_cmpfloat (dlogit[i], ==, 0.0f);
    }
  check_grad ("sigmoid loss dlogit", logit, 30, dlogit, sig_loss, &c, 1e-2f, 1e-5, 2e-3, 30);
}

/* ---------------------------------------------------------------- Adam, pos embed, gemm */

static void
test_adam (void)
{
  /* torch.optim.Adam by hand, in double, for 3 steps */
  float p[3] = { 1.0f, -2.0f, 0.5f }, m[3] = { 0 }, v[3] = { 0 };
  double pd[3] = { 1.0, -2.0, 0.5 }, md[3] = { 0 }, vd[3] = { 0 };
  float g[3][3] = { { 0.1f, -0.2f, 0.0f }, { 0.3f, 0.1f, -1.0f }, { -0.5f, 0.05f, 2.0f } };

  for (int step = 1; step <= 3; step++)
    {
      cs_cpu_adam (pool, p, g[step - 1], m, v, 3, 3e-3f, 0.9f, 0.95f, 1e-8f, step);
      for (int i = 0; i < 3; i++)
        {
          double gi = g[step - 1][i], bc1 = 1 - pow (0.9, step), bc2 = 1 - pow (0.95, step);
          md[i] = 0.9 * md[i] + 0.1 * gi;
          vd[i] = 0.95 * vd[i] + 0.05 * gi * gi;
          pd[i] -= 3e-3 / bc1 * md[i] / (sqrt (vd[i]) / sqrt (bc2) + 1e-8);
        }
    }
  for (int i = 0; i < 3; i++)
    {
      g_assert_cmpfloat_with_epsilon (p[i], pd[i], 1e-6);
      g_assert_cmpfloat_with_epsilon (m[i], md[i], 1e-7);
      g_assert_cmpfloat_with_epsilon (v[i], vd[i], 1e-7);
    }
  /* first step moves every parameter with a non-zero gradient by lr: |m/sqrt(v)| = 1 */
  {
    float q[1] = { 0 }, gq[1] = { 123.0f }, mq[1] = { 0 }, vq[1] = { 0 };
    cs_cpu_adam (pool, q, gq, mq, vq, 1, 0.01f, 0.9f, 0.95f, 1e-8f, 1);
    g_assert_cmpfloat_with_epsilon (q[0], -0.01, 1e-7);
  }
}

static void
test_pos_embed (void)
{
  /* D = 8, G = 4: quarter 2, omega = [1, 1/100]; patch (prow 2, pcol 3) */
  float pos[16 * 8];
  const float *e = pos + (2 * 4 + 3) * 8;

  cs_pos_embed_sincos (pos, 4, 8);
  g_assert_cmpfloat_with_epsilon (e[0], sin (3.0), 1e-7);
  g_assert_cmpfloat_with_epsilon (e[1], sin (0.03), 1e-7);
  g_assert_cmpfloat_with_epsilon (e[2], cos (3.0), 1e-7);
  g_assert_cmpfloat_with_epsilon (e[3], cos (0.03), 1e-7);
  g_assert_cmpfloat_with_epsilon (e[4], sin (2.0), 1e-7);
  g_assert_cmpfloat_with_epsilon (e[7], cos (0.02), 1e-7);
  g_assert_cmpfloat (pos[0], ==, 0.0f);  /* patch 0: sin 0 */
  g_assert_cmpfloat (pos[2], ==, 1.0f);  /* cos 0 */
}

static void
test_gemm_split (void)
{
  /* every transpose combination, split over threads, against a double triple loop */
  g_autoptr (GRand) rng = g_rand_new_with_seed (6);
  int m = 70, n = 45, k = 33;
  g_autofree float *a = g_new (float, m * k), *b = g_new (float, k * n);
  g_autofree float *c = g_new (float, m * n);

  fill_uniform (rng, a, m * k, -1, 1);
  fill_uniform (rng, b, k * n, -1, 1);
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      for (int big = 0; big < 2; big++)
        {
          /* big: large enough to be split over the pool */
          int mm = big ? m : 7;
          for (int i = 0; i < m * n; i++)
            c[i] = 1.0f;
          cs_cpu_gemm (pool, ta, tb, mm, n, k, 2.0f, a, ta ? mm : k, b, tb ? k : n, 0.5f, c, n);
          for (int i = 0; i < mm; i++)
            for (int j = 0; j < n; j++)
              {
                double s = 0.0;
                for (int l = 0; l < k; l++)
                  s += (double) (ta ? a[l * mm + i] : a[i * k + l])
                       * (tb ? b[j * k + l] : b[l * n + j]);
                g_assert_cmpfloat_with_epsilon (c[i * n + j], 2.0 * s + 0.5, 1e-4);
              }
        }
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  pool = cs_pool_new (2);
  g_test_add_func ("/engine/ops/linear", test_linear);
  g_test_add_func ("/engine/ops/layernorm", test_layernorm);
  g_test_add_func ("/engine/ops/attention", test_attention);
  g_test_add_func ("/engine/ops/gelu", test_gelu);
  g_test_add_func ("/engine/ops/tokens", test_tokens);
  g_test_add_func ("/engine/ops/sigmoid-loss", test_sigmoid_loss);
  g_test_add_func ("/engine/ops/adam", test_adam);
  g_test_add_func ("/engine/ops/pos-embed", test_pos_embed);
  g_test_add_func ("/engine/ops/gemm-split", test_gemm_split);
  rc = g_test_run ();
  cs_pool_free (pool);
  return rc;
}
