/* Every op of every available backend against the plain host reference (cs-cpu-ops with
 * one thread and the scalar attention), through the backend's own memory API (alloc,
 * upload, op, download), as ggml's test-backend-ops does. The CPU backend is always
 * checked; CUDA too when its module loads (else that part is reported and skipped).
 * Tolerance per element: |got - want| <= atol + rtol * |want| (stated per op). */
#include <math.h>
#include <string.h>

#include "engine/cs-backend.h"
#include "engine/cs-cpu-ops.h"

static CsPool *ref_pool;

typedef struct
{
  CsBackend *be;
  GPtrArray *buffers;
} Dev;

static float *
dev_put (Dev *d, const void *host, size_t bytes)
{
  void *p = d->be->ops->alloc (d->be, bytes);
  if (host != NULL)
    d->be->ops->upload (d->be, p, host, bytes);
  g_ptr_array_add (d->buffers, p);
  return p;
}

static float *
dev_get (Dev *d, const void *dev, size_t n)
{
  float *host = g_new (float, n);
  d->be->ops->synchronize (d->be);
  d->be->ops->download (d->be, host, dev, sizeof (float) * n);
  return host;
}

static void
compare (const char *backend, const char *what, const float *got, const float *want, size_t n,
         double atol, double rtol)
{
  double worst = 0.0;
  for (size_t i = 0; i < n; i++)
    {
      double diff = fabs ((double) got[i] - want[i]);
      double err = diff == 0.0 ? 0.0 : diff / (atol + rtol * fabs (want[i]));
      if (!(err <= 1.0))
        g_error ("%s %s[%zu]: %.8g, reference %.8g (atol %g rtol %g)", backend, what, i,
                 got[i], want[i], atol, rtol);
      worst = MAX (worst, err);
    }
  g_test_message ("%s %s: %zu values within tolerance (worst %.3f of it)", backend, what, n,
                  worst);
}

static float *
rnd (GRand *rng, size_t n, double lo, double hi)
{
  float *x = g_new (float, n);
  for (size_t i = 0; i < n; i++)
    x[i] = (float) g_rand_double_range (rng, lo, hi);
  return x;
}

static void
check_attention (Dev *d, GRand *rng, int T, int C, int NH, const int *seq_off,
                 const int *seq_len, int n_seq)
{
  const char *name = d->be->ops->name;
  const CsBackendOps *o = d->be->ops;
  g_autofree float *qkv = rnd (rng, T * 3 * C, -1.5, 1.5), *dy = rnd (rng, T * C, -1, 1);
  g_autofree float *y = g_new (float, T * C), *lse = g_new (float, NH * T);
  g_autofree float *dqkv = rnd (rng, T * 3 * C, -1, 1);
  float *gq = dev_put (d, qkv, sizeof (float) * T * 3 * C);
  float *gy = dev_put (d, NULL, sizeof (float) * T * C);
  float *gl = dev_put (d, NULL, sizeof (float) * NH * T);
  float *gdy = dev_put (d, dy, sizeof (float) * T * C);
  float *gdq = dev_put (d, dqkv, sizeof (float) * T * 3 * C);
  int *goff = (int *) dev_put (d, seq_off, sizeof (int) * n_seq);
  int *glen = (int *) dev_put (d, seq_len, sizeof (int) * n_seq);
  g_autofree float *r1 = NULL, *r2 = NULL, *r3 = NULL;
  g_autofree char *what = g_strdup_printf ("attention (T %d, head dim %d)", T, C / NH);
  g_autofree char *what_lse = g_strconcat (what, " lse", NULL);
  g_autofree char *what_bwd = g_strconcat (what, " backward", NULL);

  cs_cpu_attention_forward (ref_pool, y, lse, qkv, seq_off, seq_len, n_seq, T, C, NH, FALSE);
  o->attention_forward (d->be, gy, gl, gq, goff, glen, n_seq, T, C, NH);
  r1 = dev_get (d, gy, T * C);
  r2 = dev_get (d, gl, NH * T);
  compare (name, what, r1, y, T * C, 2e-6, 1e-5);
  compare (name, what_lse, r2, lse, NH * T, 2e-6, 1e-5);
  cs_cpu_attention_backward (ref_pool, dqkv, dy, qkv, y, lse, seq_off, seq_len, n_seq, T, C,
                             NH, FALSE);
  o->attention_backward (d->be, gdq, gdy, gq, gy, gl, goff, glen, n_seq, T, C, NH);
  r3 = dev_get (d, gdq, T * 3 * C);
  compare (name, what_bwd, r3, dqkv, T * 3 * C, 1e-5, 1e-4);
}

static void
check_backend (CsBackend *be)
{
  const CsBackendOps *o = be->ops;
  const char *name = o->name;
  Dev d = { be, g_ptr_array_new () };
  g_autoptr (GRand) rng = g_rand_new_with_seed (21);
  enum { T = 45, IN = 24, O = 40, C = 16, NH = 2 };

  /* gemm, all transposes */
  for (int ta = 0; ta < 2; ta++)
    for (int tb = 0; tb < 2; tb++)
      {
        g_autofree float *a = rnd (rng, T * IN, -1, 1), *b = rnd (rng, IN * O, -1, 1);
        g_autofree float *c = rnd (rng, T * O, -1, 1), *want = g_memdup2 (c, sizeof (float) * T * O);
        g_autofree float *got = NULL;
        float *da = dev_put (&d, a, sizeof (float) * T * IN), *db = dev_put (&d, b, sizeof (float) * IN * O);
        float *dc = dev_put (&d, c, sizeof (float) * T * O);
        cs_cpu_gemm (ref_pool, ta, tb, T, O, IN, 0.5f, a, ta ? T : IN, b, tb ? IN : O, 2.0f, want, O);
        o->gemm (be, ta, tb, T, O, IN, 0.5f, da, ta ? T : IN, db, tb ? IN : O, 2.0f, dc, O);
        got = dev_get (&d, dc, T * O);
        compare (name, "gemm", got, want, T * O, 1e-5, 1e-5);
      }

  /* linear forward / backward */
  {
    g_autofree float *x = rnd (rng, T * IN, -1, 1), *w = rnd (rng, O * IN, -1, 1);
    g_autofree float *b = rnd (rng, O, -1, 1), *dy = rnd (rng, T * O, -1, 1);
    g_autofree float *y = g_new (float, T * O), *dx = rnd (rng, T * IN, -1, 1);
    g_autofree float *dw = rnd (rng, O * IN, -1, 1), *dbias = rnd (rng, O, -1, 1);
    float *gx = dev_put (&d, x, sizeof (float) * T * IN), *gw = dev_put (&d, w, sizeof (float) * O * IN);
    float *gb = dev_put (&d, b, sizeof (float) * O), *gy = dev_put (&d, NULL, sizeof (float) * T * O);
    float *gdy = dev_put (&d, dy, sizeof (float) * T * O), *gdx = dev_put (&d, dx, sizeof (float) * T * IN);
    float *gdw = dev_put (&d, dw, sizeof (float) * O * IN), *gdb = dev_put (&d, dbias, sizeof (float) * O);
    g_autofree float *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
    cs_cpu_linear_forward (ref_pool, y, x, w, b, T, IN, O);
    o->linear_forward (be, gy, gx, gw, gb, T, IN, O);
    r1 = dev_get (&d, gy, T * O);
    compare (name, "linear_forward", r1, y, T * O, 1e-5, 1e-5);
    cs_cpu_linear_backward (ref_pool, dx, dw, dbias, dy, x, w, T, IN, O);
    o->linear_backward (be, gdx, gdw, gdb, gdy, gx, gw, T, IN, O);
    r2 = dev_get (&d, gdx, T * IN);
    r3 = dev_get (&d, gdw, O * IN);
    r4 = dev_get (&d, gdb, O);
    compare (name, "linear_backward dinp", r2, dx, T * IN, 1e-5, 1e-5);
    compare (name, "linear_backward dw", r3, dw, O * IN, 1e-5, 1e-5);
    compare (name, "linear_backward db", r4, dbias, O, 1e-5, 1e-5);
  }

  /* layernorm */
  {
    g_autofree float *x = rnd (rng, T * C, -2, 2), *w = rnd (rng, C, 0.5, 1.5), *b = rnd (rng, C, -1, 1);
    g_autofree float *dy = rnd (rng, T * C, -1, 1), *y = g_new (float, T * C);
    g_autofree float *mean = g_new (float, T), *rstd = g_new (float, T);
    g_autofree float *dx = rnd (rng, T * C, -1, 1), *dw = rnd (rng, C, -1, 1), *db = rnd (rng, C, -1, 1);
    float *gx = dev_put (&d, x, sizeof (float) * T * C), *gw = dev_put (&d, w, sizeof (float) * C);
    float *gb = dev_put (&d, b, sizeof (float) * C), *gy = dev_put (&d, NULL, sizeof (float) * T * C);
    float *gm = dev_put (&d, NULL, sizeof (float) * T), *gr = dev_put (&d, NULL, sizeof (float) * T);
    float *gdy = dev_put (&d, dy, sizeof (float) * T * C), *gdx = dev_put (&d, dx, sizeof (float) * T * C);
    float *gdw = dev_put (&d, dw, sizeof (float) * C), *gdb = dev_put (&d, db, sizeof (float) * C);
    g_autofree float *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
    cs_cpu_layernorm_forward (ref_pool, y, mean, rstd, x, w, b, T, C);
    o->layernorm_forward (be, gy, gm, gr, gx, gw, gb, T, C);
    r1 = dev_get (&d, gy, T * C);
    compare (name, "layernorm_forward", r1, y, T * C, 1e-5, 1e-5);
    cs_cpu_layernorm_backward (ref_pool, dx, dw, db, dy, x, w, mean, rstd, T, C);
    o->layernorm_backward (be, gdx, gdw, gdb, gdy, gx, gw, gm, gr, T, C);
    r2 = dev_get (&d, gdx, T * C);
    r3 = dev_get (&d, gdw, C);
    r4 = dev_get (&d, gdb, C);
    compare (name, "layernorm_backward dinp", r2, dx, T * C, 1e-5, 1e-4);
    compare (name, "layernorm_backward dw", r3, dw, C, 1e-5, 1e-4);
    compare (name, "layernorm_backward db", r4, db, C, 1e-5, 1e-4);
  }

  /* attention (reference: the scalar path with expf) over head dims 5, 8, 16, 24 and 40,
   * sequences of 1 to 520 tokens: one or several tiles of queries and keys per sequence,
   * a chunk of keys cut short, tiles that end inside a sequence */
  {
    const int off_a[] = { 0, 13, 30 }, len_a[] = { 13, 17, 15 };
    const int off_b[] = { 0, 1, 341 }, len_b[] = { 1, 340, 259 };
    const int off_c[] = { 0, 520 }, len_c[] = { 520, 80 };
    const int off_d[] = { 0, 70 }, len_d[] = { 70, 130 };
    const int off_e[] = { 0, 150 }, len_e[] = { 150, 150 };
    const int off_f[] = { 0, 7 }, len_f[] = { 7, 123 };
    check_attention (&d, rng, 45, 16, 2, off_a, len_a, 3);
    check_attention (&d, rng, 600, 32, 2, off_b, len_b, 3);
    check_attention (&d, rng, 600, 16, 2, off_c, len_c, 2);
    check_attention (&d, rng, 200, 48, 2, off_d, len_d, 2);
    check_attention (&d, rng, 300, 80, 2, off_e, len_e, 2);
    check_attention (&d, rng, 130, 10, 2, off_f, len_f, 2);
  }

  /* gelu, add, add_inplace */
  {
    size_t n = 3001;
    g_autofree float *x = rnd (rng, n, -5, 5), *dy = rnd (rng, n, -1, 1), *y = g_new (float, n);
    g_autofree float *dx = rnd (rng, n, -1, 1), *s = g_new (float, n);
    float *gx = dev_put (&d, x, sizeof (float) * n), *gy = dev_put (&d, NULL, sizeof (float) * n);
    float *gdy = dev_put (&d, dy, sizeof (float) * n), *gdx = dev_put (&d, dx, sizeof (float) * n);
    float *gs = dev_put (&d, NULL, sizeof (float) * n);
    g_autofree float *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL;
    cs_cpu_gelu_forward (ref_pool, y, x, n);
    o->gelu_forward (be, gy, gx, n);
    r1 = dev_get (&d, gy, n);
    compare (name, "gelu_forward", r1, y, n, 1e-6, 1e-6);
    cs_cpu_gelu_backward (ref_pool, dx, x, dy, n);
    o->gelu_backward (be, gdx, gx, gdy, n);
    r2 = dev_get (&d, gdx, n);
    compare (name, "gelu_backward", r2, dx, n, 1e-6, 1e-6);
    cs_cpu_add (ref_pool, s, x, dy, n);
    o->add (be, gs, gx, gdy, n);
    r3 = dev_get (&d, gs, n);
    compare (name, "add", r3, s, n, 0, 1e-7);
    cs_cpu_add_inplace (ref_pool, s, x, n);
    o->add_inplace (be, gs, gx, n);
    r4 = dev_get (&d, gs, n);
    compare (name, "add_inplace", r4, s, n, 0, 1e-7);
  }

  /* tokens: embed and scatter, forward and backward */
  {
    int tp[6] = { -1, 3, 0, -1, 2, 1 }, src[5] = { 0, -1, 2, 3, -1 }, patch[5] = { -1, 2, 0, -1, 3 };
    g_autofree float *x = rnd (rng, 6 * C, -1, 1), *cls = rnd (rng, C, -1, 1), *pos = rnd (rng, 4 * C, -1, 1);
    g_autofree float *dcls = rnd (rng, C, -1, 1), *ys = rnd (rng, 6 * C, -1, 1), *mask = rnd (rng, C, -1, 1);
    g_autofree float *xs = g_new (float, 5 * C), *dxs = rnd (rng, 5 * C, -1, 1), *dys = rnd (rng, 6 * C, -1, 1);
    g_autofree float *dmask = rnd (rng, C, -1, 1);
    float *gx = dev_put (&d, x, sizeof (float) * 6 * C), *gcls = dev_put (&d, cls, sizeof (float) * C);
    float *gpos = dev_put (&d, pos, sizeof (float) * 4 * C), *gdcls = dev_put (&d, dcls, sizeof (float) * C);
    int *gtp = (int *) dev_put (&d, tp, sizeof tp), *gsrc = (int *) dev_put (&d, src, sizeof src);
    int *gpatch = (int *) dev_put (&d, patch, sizeof patch);
    float *gys = dev_put (&d, ys, sizeof (float) * 6 * C), *gmask = dev_put (&d, mask, sizeof (float) * C);
    float *gxs = dev_put (&d, NULL, sizeof (float) * 5 * C), *gdxs = dev_put (&d, dxs, sizeof (float) * 5 * C);
    float *gdys = dev_put (&d, dys, sizeof (float) * 6 * C), *gdmask = dev_put (&d, dmask, sizeof (float) * C);
    g_autofree float *r1 = NULL, *r2 = NULL, *r3 = NULL, *r4 = NULL, *r5 = NULL, *r6 = NULL;
    cs_cpu_embed_forward (ref_pool, x, cls, pos, tp, 6, C);
    o->embed_forward (be, gx, gcls, gpos, gtp, 6, C);
    r1 = dev_get (&d, gx, 6 * C);
    compare (name, "embed_forward", r1, x, 6 * C, 0, 1e-7);
    cs_cpu_embed_backward (ref_pool, dcls, x, tp, 6, C);
    o->embed_backward (be, gdcls, gx, gtp, 6, C);
    r2 = dev_get (&d, gdcls, C);
    r3 = dev_get (&d, gx, 6 * C);
    compare (name, "embed_backward dcls", r2, dcls, C, 1e-7, 1e-6);
    compare (name, "embed_backward dx", r3, x, 6 * C, 0, 1e-7);
    cs_cpu_scatter_forward (ref_pool, xs, ys, mask, pos, src, patch, 5, C);
    o->scatter_forward (be, gxs, gys, gmask, gpos, gsrc, gpatch, 5, C);
    r4 = dev_get (&d, gxs, 5 * C);
    compare (name, "scatter_forward", r4, xs, 5 * C, 0, 1e-7);
    cs_cpu_scatter_backward (ref_pool, dys, dmask, dxs, src, 5, C);
    o->scatter_backward (be, gdys, gdmask, gdxs, gsrc, 5, C);
    r5 = dev_get (&d, gdys, 6 * C);
    r6 = dev_get (&d, gdmask, C);
    compare (name, "scatter_backward dy", r5, dys, 6 * C, 1e-7, 1e-6);
    compare (name, "scatter_backward dmask", r6, dmask, C, 1e-7, 1e-6);
  }

  /* sigmoid loss and Adam */
  {
    enum { K = 64 };
    g_autofree float *z = rnd (rng, T * K, -3, 3), *t = rnd (rng, T * K, 0, 1), *coef = rnd (rng, T, 0, 0.01);
    g_autofree float *pred = g_new (float, T * K), *dz = g_new (float, T * K);
    float *gz = dev_put (&d, z, sizeof (float) * T * K), *gt = dev_put (&d, t, sizeof (float) * T * K);
    float *gc = dev_put (&d, coef, sizeof (float) * T), *gp = dev_put (&d, NULL, sizeof (float) * T * K);
    float *gdz = dev_put (&d, NULL, sizeof (float) * T * K);
    g_autofree float *r1 = NULL, *r2 = NULL;
    double want, got;
    coef[3] = 0.0f;
    o->upload (be, gc, coef, sizeof (float) * T);
    want = cs_cpu_sigmoid_loss (ref_pool, pred, dz, z, t, coef, 0.1f, T, K);
    got = o->sigmoid_loss (be, gp, gdz, gz, gt, gc, 0.1f, T, K);
    g_assert_cmpfloat (fabs (got - want), <=, 1e-6 * fabs (want));
    r1 = dev_get (&d, gp, T * K);
    r2 = dev_get (&d, gdz, T * K);
    compare (name, "sigmoid_loss pred", r1, pred, T * K, 1e-7, 1e-6);
    compare (name, "sigmoid_loss dlogit", r2, dz, T * K, 1e-9, 1e-5);
  }
  {
    size_t n = 5000;
    g_autofree float *p = rnd (rng, n, -1, 1), *g = rnd (rng, n, -1, 1), *m = rnd (rng, n, -0.1, 0.1);
    g_autofree float *v = rnd (rng, n, 0, 0.01);
    float *gp = dev_put (&d, p, sizeof (float) * n), *gg = dev_put (&d, g, sizeof (float) * n);
    float *gm = dev_put (&d, m, sizeof (float) * n), *gv = dev_put (&d, v, sizeof (float) * n);
    g_autofree float *r1 = NULL, *r2 = NULL, *r3 = NULL;
    cs_cpu_adam (ref_pool, p, g, m, v, n, 3e-3f, 0.9f, 0.95f, 1e-8f, 7);
    o->adam (be, gp, gg, gm, gv, n, 3e-3f, 0.9f, 0.95f, 1e-8f, 7);
    r1 = dev_get (&d, gp, n);
    r2 = dev_get (&d, gm, n);
    r3 = dev_get (&d, gv, n);
    compare (name, "adam params", r1, p, n, 1e-7, 1e-6);
    /* m = b1 m + (1 - b1) g cancels: one rounding of its ~0.1 terms (FMA or not) is ~1e-8 */
    compare (name, "adam m", r2, m, n, 3e-8, 1e-6);
    compare (name, "adam v", r3, v, n, 1e-12, 1e-6);
  }

  for (guint i = 0; i < d.buffers->len; i++)
    o->release (be, g_ptr_array_index (d.buffers, i));
  g_ptr_array_unref (d.buffers);
}

static void
test_cpu (void)
{
  CsBackend *be = cs_backend_open ("cpu", 2, NULL);
  g_assert_nonnull (be);
  check_backend (be);
  cs_backend_close (be);
}

static void
test_cuda (void)
{
  g_autofree char *reason = NULL;
  CsBackend *be = cs_backend_open ("cuda", 2, &reason);

  if (be == NULL)
    {
      g_test_skip (reason);
      return;
    }
  check_backend (be);
  cs_backend_close (be);
}

int
main (int argc, char **argv)
{
  int rc;

  g_test_init (&argc, &argv, NULL);
  ref_pool = cs_pool_new (1);
  g_test_add_func ("/engine/backend-ops/cpu", test_cpu);
  g_test_add_func ("/engine/backend-ops/cuda", test_cuda);
  rc = g_test_run ();
  cs_pool_free (ref_pool);
  return rc;
}
