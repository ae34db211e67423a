/* test-mc: Monte-Carlo inference through a tiny network. Every ROI patch gets exactly K
 * samples (balanced and random), balanced uses the fewest passes, and the batched result
 * equals running each pass alone through the network and averaging by hand (double
 * precision), with EU the population variance and AU = |image - mean| on the ROI. */
#include "engine/cs-backend.h"
#include "engine/cs-mc.h"
#include "engine/cs-model.h"

#include <math.h>
#include <string.h>

#define S 64
#define P 8
#define G (S / P)
#define N (G * G)

static const char *config_json =
  "{\"img_size\": 64, \"patch\": 8, \"in_chans\": 1, \"enc_dim\": 32, \"enc_depth\": 2,"
  " \"enc_heads\": 4, \"dec_dim\": 16, \"dec_depth\": 1, \"dec_heads\": 2,"
  " \"mlp_ratio\": 4.0, \"mask_ratio\": 0.75, \"context_margin\": %d}";

typedef struct
{
  CsBackend *backend;
  CsModel *model;
  float image[S * S];
  guint8 roi[S * S];
} Fixture;

static void
fixture_setup (Fixture *f, gconstpointer data)
{
  int margin = GPOINTER_TO_INT (data);
  g_autofree char *json = g_strdup_printf (config_json, margin);
  g_autoptr (GError) error = NULL;
  f->backend = cs_backend_cpu_new (1);
  CsModelConfig config;
  g_assert_true (cs_model_config_from_json (json, &config, &error));
  g_assert_no_error (error);
  f->model = cs_model_new (&config, f->backend, 7, &error);
  g_assert_no_error (error);
  for (int y = 0; y < S; y++)
    for (int x = 0; x < S; x++)
      {
        f->image[y * S + x] = 0.5f + 0.3f * sinf (x * 0.3f) * cosf (y * 0.17f);
        /* A cord-like band: columns 28..35, rows 6..57 (crosses patch borders). */
        f->roi[y * S + x] = x >= 28 && x <= 35 && y >= 6 && y <= 57;
      }
}

static void
fixture_teardown (Fixture *f, gconstpointer data)
{
  cs_model_free (f->model);
  cs_backend_close (f->backend);
}

static void
roi_patches (const guint8 *roi, guint8 *is_roi, int *n_roi)
{
  *n_roi = cs_roi_patches_from_mask (roi, S, S, P, is_roi);
}

static void
check_exactly_k (Fixture *f, CsMcScheduleKind kind, int k)
{
  guint8 is_roi[N];
  int n_roi;
  roi_patches (f->roi, is_roi, &n_roi);
  int counts[N];
  CsMcStats stats;
  g_autoptr (GError) error = NULL;
  g_assert_true (cs_mc_infer (f->model, f->image, f->roi, k, kind, 11, NULL, NULL, NULL, NULL,
                              counts, &stats, &error));
  g_assert_no_error (error);
  for (int p = 0; p < N; p++)
    g_assert_cmpint (counts[p], ==, is_roi[p] ? k : 0);
  g_assert_cmpint (stats.n_roi, ==, n_roi);
  int m = cs_mask_count (n_roi, 0.75);
  int fewest = (k * n_roi + m - 1) / m;
  if (kind == CS_MC_SCHEDULE_BALANCED)
    g_assert_cmpint (stats.n_passes, ==, fewest);
  else
    g_assert_cmpint (stats.n_passes, >=, fewest);
}

static void
test_exactly_k (Fixture *f, gconstpointer data)
{
  const int ks[] = { 1, 3, 10 };
  for (guint i = 0; i < G_N_ELEMENTS (ks); i++)
    {
      check_exactly_k (f, CS_MC_SCHEDULE_BALANCED, ks[i]);
      check_exactly_k (f, CS_MC_SCHEDULE_RANDOM, ks[i]);
    }
}

/* The same schedule as cs_mc_infer draws for this seed. */
static CsMcSchedule *
same_schedule (Fixture *f, CsMcScheduleKind kind, int k, guint64 seed, int margin)
{
  guint8 is_roi[N], base[N];
  int n_roi;
  roi_patches (f->roi, is_roi, &n_roi);
  cs_context_states (is_roi, G, G, margin, base);
  guint32 words[2] = { (guint32) seed, (guint32) (seed >> 32) };
  GRand *rng = g_rand_new_with_seed_array (words, 2);
  CsMcSchedule *s = kind == CS_MC_SCHEDULE_BALANCED
    ? cs_mc_schedule_new_balanced (is_roi, base, N, k, 0.75, rng)
    : cs_mc_schedule_new_random (is_roi, base, N, k, 0.75, rng);
  g_rand_free (rng);
  return s;
}

static void
check_against_single_passes (Fixture *f, CsMcScheduleKind kind, int k, int margin)
{
  const guint64 seed = 5;
  static float mean[S * S], eu[S * S], au[S * S];
  g_autoptr (GError) error = NULL;
  CsMcStats stats;
  g_assert_true (cs_mc_infer (f->model, f->image, f->roi, k, kind, seed, NULL, mean, eu, au,
                              NULL, &stats, &error));
  g_assert_no_error (error);

  g_autoptr (CsMcSchedule) s = same_schedule (f, kind, k, seed, margin);
  g_assert_cmpint (s->n_passes, ==, stats.n_passes);
  g_autofree double *sum = g_new0 (double, S * S);
  g_autofree double *sum2 = g_new0 (double, S * S);
  g_autofree int *count = g_new0 (int, S * S);
  g_autofree float *pred = g_new (float, N * P * P);
  for (int b = 0; b < s->n_passes; b++)
    {
      const guint8 *st = s->states + (gsize) b * N;
      CsBatch batch = { 1, f->image, st };
      CsForwardOut out = { 0 };
      out.pred_img = pred;
      g_assert_true (cs_model_forward_backward (f->model, &batch, FALSE, &out, &error));
      for (int p = 0; p < N; p++)
        {
          if (!s->counted[(gsize) b * N + p])
            continue;
          g_assert_cmpint (st[p], ==, CS_PATCH_MASKED);
          for (int y = 0; y < P; y++)
            for (int x = 0; x < P; x++)
              {
                int i = ((p / G) * P + y) * S + (p % G) * P + x;
                double v = pred[(gsize) p * P * P + y * P + x];
                sum[i] += v;
                sum2[i] += v * v;
                count[i]++;
              }
        }
    }
  for (int i = 0; i < S * S; i++)
    {
      if (count[i] == 0)
        {
          g_assert_cmpfloat (mean[i], ==, f->image[i]);
          g_assert_cmpfloat (eu[i], ==, 0.0f);
        }
      else
        {
          g_assert_cmpint (count[i], ==, k);
          double m = sum[i] / k, var = sum2[i] / k - m * m;
          g_assert_cmpfloat_with_epsilon (mean[i], m, 1e-5);
          g_assert_cmpfloat_with_epsilon (eu[i], MAX (var, 0.0), 1e-6);
        }
      double want_au = f->roi[i] ? fabs (f->image[i] - (double) mean[i]) : 0.0;
      g_assert_cmpfloat_with_epsilon (au[i], want_au, 1e-6);
    }
  /* The network does not reproduce the image: some ROI pixel has a non-zero AU and EU. */
  double max_au = 0, max_eu = 0;
  for (int i = 0; i < S * S; i++)
    {
      max_au = MAX (max_au, au[i]);
      max_eu = MAX (max_eu, eu[i]);
    }
  g_assert_cmpfloat (max_au, >, 1e-4);
  if (k > 1)
    g_assert_cmpfloat (max_eu, >, 0.0);
}

static void
test_against_single_passes (Fixture *f, gconstpointer data)
{
  int margin = GPOINTER_TO_INT (data);
  check_against_single_passes (f, CS_MC_SCHEDULE_BALANCED, 10, margin);
  check_against_single_passes (f, CS_MC_SCHEDULE_RANDOM, 4, margin);
}

static void
test_errors (Fixture *f, gconstpointer data)
{
  g_autoptr (GError) error = NULL;
  static guint8 empty[S * S];
  g_assert_false (cs_mc_infer (f->model, f->image, empty, 10, CS_MC_SCHEDULE_BALANCED, 0, NULL,
                               NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_clear_error (&error);
  g_autoptr (GCancellable) c = g_cancellable_new ();
  g_cancellable_cancel (c);
  g_assert_false (cs_mc_infer (f->model, f->image, f->roi, 10, CS_MC_SCHEDULE_BALANCED, 0, c,
                               NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error (&error);
  g_assert_false (cs_mc_infer (f->model, f->image, f->roi, 0, CS_MC_SCHEDULE_BALANCED, 0, NULL,
                               NULL, NULL, NULL, NULL, NULL, &error));
  g_assert_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT);
}

int
main (int argc, char **argv)
{
  g_test_init (&argc, &argv, NULL);
  g_test_add ("/mc/exactly-k", Fixture, GINT_TO_POINTER (-1), fixture_setup, test_exactly_k,
              fixture_teardown);
  g_test_add ("/mc/exactly-k-margin", Fixture, GINT_TO_POINTER (1), fixture_setup,
              test_exactly_k, fixture_teardown);
  g_test_add ("/mc/batch-equals-single-passes", Fixture, GINT_TO_POINTER (-1), fixture_setup,
              test_against_single_passes, fixture_teardown);
  g_test_add ("/mc/batch-equals-single-passes-margin", Fixture, GINT_TO_POINTER (1),
              fixture_setup, test_against_single_passes, fixture_teardown);
  g_test_add ("/mc/errors", Fixture, GINT_TO_POINTER (-1), fixture_setup, test_errors,
              fixture_teardown);
  return g_test_run ();
}
