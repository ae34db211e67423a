/* test-cuda-model: the whole network on the CUDA backend against the CPU backend.
 *
 * Same configuration, seed and batch on both: predictions, losses and every gradient
 * after one forward/backward, then 10 training steps (forward, backward, Adam) with the
 * loss of each step and the parameters at the end. Configurations: "tiny" (head dim 8,
 * context dropped), "reference" (all context, batch 2) and two with head dims 16/40 and
 * 24/32, which run the 16-, 32- and 64-wide attention kernels (zero-padded where needed).
 * Then an out-of-memory allocation must give NULL, a clear error and no crash. Without a
 * usable GPU: exit 77. CS_TEST_BACKEND=cpu checks this harness on the CPU alone;
 * CS_TEST_QUICK=1 leaves out the reference configuration, CS_TEST_QUICK=2 runs "tiny" alone.
 *
 * Tolerances (fp32 on both sides, GEMMs in fp32, summation orders differ):
 *   loss: |a - b| <= 1e-4 |b|;  predictions: |a - b| <= 1e-4 + 1e-4 |b|;
 *   gradients, per tensor: max |a - b| <= 2e-3 max |b| + 1e-7;
 *   10 steps: every step's loss within 1e-3 relative; parameters: mean |a - b| <= 1e-5 and
 *   under 0.1 % of them differ by more than 1e-3 (Adam turns the sign of a gradient that
 *   is rounding noise into a full lr step, so a few elements may differ by ~lr per step). */
#include "cs-config.h"
#include "engine/cs-model.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static int failures;
/* the backend under test: "cuda"; CS_TEST_BACKEND=cpu checks this harness on the CPU alone */
static const char *second = "cuda";

#define CHECK(cond, ...) \
  do \
    { \
      if (!(cond)) \
        { \
          failures++; \
          fprintf (stderr, "FAIL: " __VA_ARGS__); \
          fputc ('\n', stderr); \
        } \
    } \
  while (0)

static void
make_batch (const CsModelConfig *c, int B, guint32 seed, float **images, guint8 **state)
{
  int S = c->img_size, N = cs_model_config_n_patches (c);
  g_autoptr (GRand) rng = g_rand_new_with_seed (seed);
  g_autofree guint8 *roi = g_new0 (guint8, (size_t) S * S);
  g_autofree guint8 *is_roi = g_new (guint8, N);

  *images = g_new (float, (size_t) B * S * S);
  *state = g_new (guint8, (size_t) B * N);
  for (int b = 0; b < B; b++)
    {
      float *img = *images + (size_t) b * S * S;
      double centre = S / 2.0 + 10.0 * sin (b);
      memset (roi, 0, (size_t) S * S);
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
          {
            double cord = exp (-pow ((x - centre - 8 * sin (y / 40.0)) / 7.0, 2));
            double v = 0.3 + 0.5 * cord + 0.1 * sin (x / 9.0 + y / 13.0)
                       + 0.03 * g_rand_double_range (rng, -1, 1);
            img[(size_t) y * S + x] = (float) CLAMP (v, 0.0, 1.0);
            roi[(size_t) y * S + x] = fabs (x - centre - 8 * sin (y / 40.0)) <= 9.0;
          }
      cs_patch_roi_from_mask (c, roi, is_roi);
      cs_patch_state_random (c, is_roi, rng, *state + (size_t) b * N);
    }
}

static double
max_abs (const float *x, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++)
    m = MAX (m, fabs (x[i]));
  return m;
}

static void
compare_model (const char *label, const CsModelConfig *config, int B)
{
  g_autoptr (GError) error = NULL;
  g_autofree char *reason = NULL;
  CsBackend *cpu = cs_backend_open ("cpu", 0, NULL);
  CsBackend *gpu = cs_backend_open (second, 1, &reason);
  g_autoptr (CsModel) mc = NULL;
  g_autoptr (CsModel) mg = NULL;
  g_autofree float *images = NULL;
  g_autofree guint8 *state = NULL;
  int N = cs_model_config_n_patches (config), PP = config->patch * config->patch;
  size_t n_pred = (size_t) B * N * PP;
  g_autofree float *pc_img = g_new0 (float, n_pred), *pc_edge = g_new0 (float, n_pred);
  g_autofree float *pg_img = g_new0 (float, n_pred), *pg_edge = g_new0 (float, n_pred);
  float *pc[2] = { pc_img, pc_edge }, *pg[2] = { pg_img, pg_edge };
  CsForwardOut oc = { 0 }, og = { 0 };
  CsBatch batch;
  gint64 t0;

  g_assert (gpu != NULL);
  mc = cs_model_new (config, cpu, 7, &error);
  g_assert_no_error (error);
  mg = cs_model_new (config, gpu, 7, &error);
  g_assert_no_error (error);
  make_batch (config, B, 11, &images, &state);
  batch = (CsBatch) { B, images, state };

  oc.pred_img = pc[0], oc.pred_edge = pc[1];
  og.pred_img = pg[0], og.pred_edge = pg[1];
  t0 = g_get_monotonic_time ();
  g_assert (cs_model_forward_backward (mc, &batch, TRUE, &oc, &error));
  g_assert (cs_model_forward_backward (mg, &batch, TRUE, &og, &error));
  printf ("%s: loss cpu %.7f %s %.7f (img %.7f / %.7f, edge %.7f / %.7f)\n", label,
          oc.loss, second, og.loss, oc.loss_img, og.loss_img, oc.loss_edge, og.loss_edge);
  CHECK (fabs (og.loss - oc.loss) <= 1e-4 * fabs (oc.loss), "%s: loss %.8g vs %.8g", label,
         og.loss, oc.loss);
  CHECK (fabs (og.loss_edge - oc.loss_edge) <= 1e-4 * fabs (oc.loss_edge),
         "%s: edge loss %.8g vs %.8g", label, og.loss_edge, oc.loss_edge);
  for (int h = 0; h < 2; h++)
    {
      double worst = 0;
      for (size_t i = 0; i < n_pred; i++)
        worst = MAX (worst, fabs (pg[h][i] - pc[h][i]) / (1e-4 + 1e-4 * fabs (pc[h][i])));
      printf ("%s: %s predictions worst %.3f of tolerance\n", label, h ? "edge" : "image",
              worst);
      CHECK (worst <= 1.0, "%s: predictions (%s) off by %.3f x tolerance", label,
             h ? "edge" : "image", worst);
    }
  {
    const float *gc = cs_model_grads (mc), *gg = cs_model_grads (mg);
    double worst = 0;
    const char *worst_name = "";
    for (int t = 0; t < cs_model_n_tensors (mc); t++)
      {
        const CsTensorInfo *info = cs_model_tensor (mc, t);
        double scale = max_abs (gc + info->offset, info->numel), diff = 0;
        for (size_t i = 0; i < info->numel; i++)
          diff = MAX (diff, fabs (gg[info->offset + i] - gc[info->offset + i]));
        if (diff / (2e-3 * scale + 1e-7) > worst)
          {
            worst = diff / (2e-3 * scale + 1e-7);
            worst_name = info->name;
          }
        CHECK (diff <= 2e-3 * scale + 1e-7, "%s: gradient %s: max diff %.3g, max |g| %.3g",
               label, info->name, diff, scale);
      }
    printf ("%s: gradients of %d tensors, worst %.3f of tolerance (%s)\n", label,
            cs_model_n_tensors (mc), worst, worst_name);
  }

  /* 10 training steps on both */
  for (int step = 0; step < 10; step++)
    {
      CsForwardOut sc = { 0 }, sg = { 0 };
      if (step > 0)
        {
          g_assert (cs_model_forward_backward (mc, &batch, TRUE, &sc, &error));
          g_assert (cs_model_forward_backward (mg, &batch, TRUE, &sg, &error));
          CHECK (fabs (sg.loss - sc.loss) <= 1e-3 * fabs (sc.loss),
                 "%s: step %d loss %.8g vs %.8g", label, step, sg.loss, sc.loss);
        }
      cs_model_adam_step (mc, 3e-3f);
      cs_model_adam_step (mg, 3e-3f);
    }
  {
    const float *a = cs_model_params (mg), *b = cs_model_params (mc);
    size_t n = cs_model_n_params (mc), big = 0;
    double mean = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
      {
        double d = fabs (a[i] - b[i]);
        mean += d;
        worst = MAX (worst, d);
        big += d > 1e-3;
      }
    mean /= n;
    printf ("%s: after 10 Adam steps: mean |diff| %.3g, max %.3g, %zu of %zu above 1e-3\n",
            label, mean, worst, big, n);
    CHECK (mean <= 1e-5 && big <= n / 1000, "%s: parameters after 10 steps drifted", label);
  }
  {
    g_autofree char *err = cs_backend_take_error (gpu);
    CHECK (err == NULL, "%s: backend error %s", label, err);
  }
  printf ("%s: done in %.1f s\n", label, (g_get_monotonic_time () - t0) / 1e6);
  g_clear_pointer (&mc, cs_model_free);
  g_clear_pointer (&mg, cs_model_free);
  cs_backend_close (cpu);
  cs_backend_close (gpu);
}

static void
check_out_of_memory (void)
{
  g_autofree char *reason = NULL, *err = NULL;
  CsBackend *gpu = cs_backend_open ("cuda", 0, &reason);
  void *p;

  g_assert (gpu != NULL);
  p = gpu->ops->alloc (gpu, (size_t) 1 << 50); /* 1 PiB */
  err = cs_backend_take_error (gpu);
  printf ("out of memory: %s -> %s\n", p ? "a pointer" : "NULL", err ? err : "(no error)");
  CHECK (p == NULL && err != NULL && strstr (err, "out of GPU memory") != NULL,
         "a 1 PiB allocation did not fail cleanly");
  CHECK (isnan (gpu->ops->sigmoid_loss (gpu, NULL, NULL, NULL, NULL, NULL, 1.0f, 1, 1)),
         "ops run after a failure");
  cs_backend_close (gpu);
}

int
main (int argc, char **argv)
{
  g_autofree char *reason = NULL;
  CsBackend *probe;
  CsModelConfig tiny, reference, odd;
  g_autoptr (GError) error = NULL;

  if (g_getenv ("CS_TEST_BACKEND") != NULL)
    second = g_getenv ("CS_TEST_BACKEND");
  probe = cs_backend_open (second, 0, &reason);
  if (probe == NULL)
    {
      printf ("SKIP: %s\n", reason);
      return 77;
    }
  cs_backend_close (probe);
  g_assert (cs_model_config_preset ("tiny", &tiny, &error));
  g_assert (cs_model_config_preset ("reference", &reference, &error));
  compare_model ("tiny", &tiny, 4);
  if (g_strcmp0 (g_getenv ("CS_TEST_QUICK"), "2") == 0)
    goto done;
  odd = tiny;
  odd.enc_dim = 48; /* 3 heads of 16 */
  odd.enc_heads = 3;
  odd.enc_depth = 2;
  odd.dec_dim = 40; /* 1 head of 40 */
  odd.dec_heads = 1;
  odd.dec_depth = 1;
  compare_model ("head-dims-16-40", &odd, 3);
  odd.enc_heads = 2; /* 2 heads of 24 */
  odd.dec_dim = 32;  /* 1 head of 32 */
  compare_model ("head-dims-24-32", &odd, 2);
  if (g_getenv ("CS_TEST_QUICK") == NULL)
    compare_model ("reference", &reference, 2);
done:
  if (g_str_equal (second, "cuda"))
    check_out_of_memory ();
  printf ("%s\n", failures ? "FAILED" : "all model parity checks passed");
  return failures ? 1 : 0;
}
