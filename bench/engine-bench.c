/* engine-bench: the C engine alone, per preset: training and inference images/s, model
 * FLOP/s, and the fraction of an OpenBLAS sgemm 1024^3 measured in the same process.
 *
 *   engine-bench [--threads 2] [--batch 10] [--presets reference,small,tiny]
 *                [--iters 3] [--warmup 1]
 *
 * Input: 256 x 256 cord-like images (a bright vertical band, ROI = the band, 2 patch
 * columns x 26 patch rows, like a dilated cord), 75 % of ROI patches masked, context
 * dropped as the preset says. Training = forward + backward + Adam; inference =
 * forward + loss. Model FLOPs = 2 x multiply-adds of every matmul (attention's QK^T and
 * AV included); a training step counts 3x the forward. Warm-up excluded; the sgemm peak
 * is the best of native multi-threaded OpenBLAS and our split wrapper, measured before and
 * after the model runs (other jobs share the cores: the ratio is what to compare).
 * The last line is one JSON object. */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/cs-cpu-ops.h"
#include "engine/cs-model.h"

static double
now_s (void)
{
  return g_get_monotonic_time () / 1e6;
}

/* best GFLOP/s of 5 runs of C = A B, 1024^3 */
static double
sgemm_gflops (CsPool *pool, int threads, gboolean native)
{
  const int n = 1024;
  float *a = g_aligned_alloc (n * n, sizeof (float), 64);
  float *b = g_aligned_alloc (n * n, sizeof (float), 64);
  float *c = g_aligned_alloc (n * n, sizeof (float), 64);
  double best = 0.0;

  for (int i = 0; i < n * n; i++)
    {
      a[i] = (float) ((i % 97) / 97.0 - 0.5);
      b[i] = (float) ((i % 89) / 89.0 - 0.5);
    }
  openblas_set_num_threads (native ? threads : 1);
  for (int rep = 0; rep < 6; rep++)
    {
      double t0 = now_s (), dt;
      if (native)
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n,
                     0.0f, c, n);
      else
        cs_cpu_gemm (pool, FALSE, FALSE, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
      dt = now_s () - t0;
      if (rep > 0)
        best = MAX (best, 2.0 * n * n * (double) n / dt / 1e9);
    }
  openblas_set_num_threads (1);
  g_aligned_free (a);
  g_aligned_free (b);
  g_aligned_free (c);
  return best;
}

static void
make_inputs (const CsModelConfig *c, int B, float *images, guint8 *states, guint64 seed)
{
  int S = c->img_size, N = cs_model_config_n_patches (c);
  g_autofree guint8 *roi = g_new0 (guint8, (size_t) S * S);
  g_autofree guint8 *is_roi = g_new (guint8, N);
  g_autoptr (GRand) rng = g_rand_new_with_seed ((guint32) seed);
  int x0 = S / 2 - 6, x1 = S / 2 + 6, y0 = S * 3 / 32, y1 = S * 29 / 32;

  for (int y = y0; y < y1; y++)
    for (int x = x0; x < x1; x++)
      roi[y * S + x] = 1;
  cs_patch_roi_from_mask (c, roi, is_roi);
  for (int b = 0; b < B; b++)
    {
      float *img = images + (size_t) b * S * S;
      for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++)
          img[y * S + x] = roi[y * S + x] ? 0.7f : (float) (0.1 + 0.3 * g_rand_double (rng));
      cs_patch_state_random (c, is_roi, rng, states + (size_t) b * N);
    }
}

int
main (int argc, char **argv)
{
  int threads = 2, B = 10, iters = 3, warmup = 1;
  g_autofree char *presets_arg = g_strdup ("reference,small,tiny");
  GOptionEntry entries[] = {
    { "threads", 0, 0, G_OPTION_ARG_INT, &threads, "threads (2)", "N" },
    { "batch", 0, 0, G_OPTION_ARG_INT, &B, "batch size (10)", "B" },
    { "presets", 0, 0, G_OPTION_ARG_STRING, &presets_arg, "comma-separated presets", "LIST" },
    { "iters", 0, 0, G_OPTION_ARG_INT, &iters, "timed steps per mode (3)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &warmup, "untimed steps per mode (1)", "N" },
    { NULL }
  };
  g_autoptr (GOptionContext) ctx = g_option_context_new ("- time the C engine");
  g_autoptr (GError) error = NULL;
  g_auto (GStrv) presets = NULL;
  g_autoptr (GString) json = g_string_new ("{");
  CsBackend *be;
  CsPool *pool;
  double peak_before, peak_after, peak, native, split;

  g_option_context_add_main_entries (ctx, entries, NULL);
  if (!g_option_context_parse (ctx, &argc, &argv, &error))
    {
      fprintf (stderr, "engine-bench: %s\n", error->message);
      return 2;
    }
  presets = g_strsplit (presets_arg, ",", -1);
  be = cs_backend_cpu_new (threads);
  pool = cs_pool_new (threads);

  native = sgemm_gflops (pool, threads, TRUE);
  split = sgemm_gflops (pool, threads, FALSE);
  peak_before = MAX (native, split);
  printf ("sgemm 1024^3, %d threads: OpenBLAS %.1f GFLOP/s, split wrapper %.1f GFLOP/s\n",
          threads, native, split);
  g_string_append_printf (json, "\"threads\": %d, \"batch\": %d, \"presets\": {", threads, B);

  for (int pi = 0; presets[pi] != NULL; pi++)
    {
      CsModelConfig c;
      g_autoptr (CsModel) model = NULL;
      int S, N;
      g_autofree float *images = NULL;
      g_autofree guint8 *states = NULL;
      CsBatch batch;
      double flops_fwd = 0.0, t_train, t_infer;
      int enc_tokens = 0, dec_tokens = 0;

      if (!cs_model_config_preset (presets[pi], &c, &error))
        {
          fprintf (stderr, "engine-bench: %s\n", error->message);
          return 2;
        }
      S = c.img_size;
      N = cs_model_config_n_patches (&c);
      images = g_new (float, (size_t) B * S * S);
      states = g_new (guint8, (size_t) B * N);
      make_inputs (&c, B, images, states, 1);
      for (int b = 0; b < B; b++)
        {
          int ne = 1, nd = 1;
          for (int q = 0; q < N; q++)
            {
              ne += states[b * N + q] == CS_PATCH_VISIBLE;
              nd += states[b * N + q] != CS_PATCH_DROPPED;
            }
          enc_tokens += ne;
          dec_tokens += nd;
          flops_fwd += cs_model_config_forward_flops (&c, ne, nd);
        }
      batch = (CsBatch) { B, images, states };
      model = cs_model_new (&c, be, 0, &error);

      for (int i = 0; i < warmup; i++)
        {
          cs_model_forward_backward (model, &batch, TRUE, NULL, NULL);
          cs_model_adam_step (model, 1e-4f);
        }
      t_train = now_s ();
      for (int i = 0; i < iters; i++)
        {
          cs_model_forward_backward (model, &batch, TRUE, NULL, NULL);
          cs_model_adam_step (model, 1e-4f);
        }
      t_train = (now_s () - t_train) / iters;
      for (int i = 0; i < warmup; i++)
        cs_model_forward_backward (model, &batch, FALSE, NULL, NULL);
      t_infer = now_s ();
      for (int i = 0; i < iters; i++)
        cs_model_forward_backward (model, &batch, FALSE, NULL, NULL);
      t_infer = (now_s () - t_infer) / iters;

      printf ("%-9s tokens/item enc %d dec %d | train %.3f s/step %.1f img/s %.1f GFLOP/s "
              "| infer %.3f s/pass %.1f img/s %.1f GFLOP/s\n",
              presets[pi], enc_tokens / B, dec_tokens / B, t_train, B / t_train,
              3 * flops_fwd / t_train / 1e9, t_infer, B / t_infer, flops_fwd / t_infer / 1e9);
      fflush (stdout);
      g_string_append_printf (json,
                              "%s\"%s\": {\"train_s\": %.4f, \"train_img_s\": %.2f, "
                              "\"train_gflops\": %.2f, \"infer_s\": %.4f, \"infer_img_s\": %.2f, "
                              "\"infer_gflops\": %.2f, \"enc_tokens\": %d, \"dec_tokens\": %d",
                              pi ? ", " : "", presets[pi], t_train, B / t_train,
                              3 * flops_fwd / t_train / 1e9, t_infer, B / t_infer,
                              flops_fwd / t_infer / 1e9, enc_tokens / B, dec_tokens / B);
      /* efficiencies filled in below, once the peak is final */
      g_string_append_printf (json, ", \"train_flops\": %.6g, \"infer_flops\": %.6g}",
                              3 * flops_fwd / t_train, flops_fwd / t_infer);
    }

  native = sgemm_gflops (pool, threads, TRUE);
  split = sgemm_gflops (pool, threads, FALSE);
  peak_after = MAX (native, split);
  peak = MAX (peak_before, peak_after);
  printf ("sgemm after: OpenBLAS %.1f, split %.1f GFLOP/s; peak used %.1f GFLOP/s\n", native,
          split, peak);
  g_string_append_printf (json, "}, \"sgemm_gflops\": %.2f", peak);
  /* the efficiencies, per preset */
  for (int pi = 0; presets[pi] != NULL; pi++)
    {
      const char *key = g_strdup_printf ("\"%s\": {", presets[pi]);
      const char *at = strstr (json->str, key);
      double tf = 0, inf = 0;
      const char *p1 = at ? strstr (at, "\"train_flops\": ") : NULL;
      const char *p2 = at ? strstr (at, "\"infer_flops\": ") : NULL;
      if (p1 && p2)
        {
          tf = g_ascii_strtod (p1 + 15, NULL);
          inf = g_ascii_strtod (p2 + 15, NULL);
          printf ("%-9s train_eff %.3f infer_eff %.3f\n", presets[pi], tf / 1e9 / peak,
                  inf / 1e9 / peak);
          g_string_append_printf (json, ", \"%s_train_eff\": %.4f, \"%s_infer_eff\": %.4f",
                                  presets[pi], tf / 1e9 / peak, presets[pi], inf / 1e9 / peak);
        }
      g_free ((char *) key);
    }
  g_string_append (json, "}");
  printf ("%s\n", json->str);
  cs_pool_free (pool);
  cs_backend_close (be);
  return 0;
}
