/* cs-adapt.c: U2AD adaptation with EU-guided masking and AU-guided exclusion, and its run
 * folder (see cs-adapt.h). */
#include "cs-config.h"
#include "engine/cs-adapt.h"
#include "engine/cs-mc.h"
#include "engine/cs-metrics.h"
#include "engine/cs-model-file.h"
#include "engine/cs-train.h"
#include "engine/cs-pipeline-private.h"

#include <errno.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

void
cs_adapt_options_init (CsAdaptOptions *o)
{
  memset (o, 0, sizeof *o);
  o->strategy = CS_ADAPT_EU_AU;
  o->epochs = 200;
  o->batch_size = 10;
  o->lr = 3e-3f;
  o->lr_step_epochs = 50;
  o->lr_step_gamma = 0.1f;
  o->eu_refresh_every = 10;
  o->au_from_epoch = 150;
  o->au_percentile = 90.0;
  o->tau = 1.0;
  o->inverted = FALSE;
  o->k = 10;
  o->mc_schedule = CS_MC_BALANCED;
  o->augment = TRUE;
  o->seed = 0;
  o->slices_per_case = 3;
  o->n_watch = 3;
}

const char *
cs_adapt_strategy_name (CsAdaptStrategy strategy)
{
  switch (strategy)
    {
    case CS_ADAPT_RANDOM:
      return "random";
    case CS_ADAPT_EU:
      return "eu";
    case CS_ADAPT_EU_AU:
    default:
      return "eu+au";
    }
}

gboolean
cs_adapt_strategy_from_name (const char *name, CsAdaptStrategy *strategy)
{
  if (g_strcmp0 (name, "random") == 0)
    *strategy = CS_ADAPT_RANDOM;
  else if (g_strcmp0 (name, "eu") == 0)
    *strategy = CS_ADAPT_EU;
  else if (g_strcmp0 (name, "eu+au") == 0 || g_strcmp0 (name, "eu-au") == 0)
    *strategy = CS_ADAPT_EU_AU;
  else
    return FALSE;
  return TRUE;
}

/* One training slice with its guidance state. */
typedef struct
{
  int case_index;
  int slice;
  float *image;      /* S*S */
  guint8 *roi;       /* S*S */
  guint8 *is_roi;    /* N */
  guint8 *base;      /* N: dropped context */
  double *patch_eu;  /* N: EU summed per patch at the latest refresh */
  guint8 *excluded;  /* N: AU components' patches at the latest refresh */
  guint8 *scored;    /* S*S: what detection scores (cs_scored_cord_mask) */
  gboolean watched;
} AdaptItem;

static void
adapt_item_clear (gpointer data)
{
  AdaptItem *it = data;
  g_free (it->image);
  g_free (it->roi);
  g_free (it->is_roi);
  g_free (it->base);
  g_free (it->patch_eu);
  g_free (it->excluded);
  g_free (it->scored);
}

typedef struct
{
  const CsAdaptOptions *o;
  CsPipelineModel *pm;
  GPtrArray *cases;
  GArray *items;          /* AdaptItem */
  int S, P, G, N;
  double ratio;
  int margin;
  char *run_dir;
  FILE *loss_csv;
  FILE *epochs_csv;
  JsonArray *refreshes;
  char *config_json;
  double first_mean_eu, last_mean_eu;
  double wall_s, images_per_s;
  int epochs_done;
  long images_trained;
  double train_s;
} Adapt;

static gboolean
write_file_atomic (const char *dir, const char *name, const void *data, gsize len,
                   GError **error)
{
  g_autofree char *path = g_build_filename (dir, name, NULL);
  g_autofree char *parent = g_path_get_dirname (path);
  if (g_mkdir_with_parents (parent, 0755) != 0)
    {
      g_set_error (error, G_IO_ERROR, g_io_error_from_errno (errno),
                   "%s: cannot create the folder: %s", parent, g_strerror (errno));
      return FALSE;
    }
  return g_file_set_contents (path, data, (gssize) len, error);
}

static void
member_double (JsonObject *o, const char *name, double v)
{
  if (isfinite (v))
    json_object_set_double_member (o, name, v);
  else
    json_object_set_null_member (o, name);
}

static gboolean
write_run_json (Adapt *a, const char *status, const char *message, GError **error)
{
  if (a->run_dir == NULL)
    return TRUE;
  const CsAdaptOptions *o = a->o;
  g_autoptr (JsonObject) root = json_object_new ();
  json_object_set_string_member (root, "format", "cordscope-adapt-run");
  json_object_set_int_member (root, "version", 1);
  json_object_set_string_member (root, "status", status);
  if (message)
    json_object_set_string_member (root, "error", message);
  else
    json_object_set_null_member (root, "error");
  json_object_set_string_member (root, "model_in", a->pm->path);
  json_object_set_string_member (root, "checkpoint", "checkpoint.safetensors");
  JsonNode *config = json_from_string (a->config_json, NULL);
  if (config)
    json_object_set_member (root, "config", config);
  JsonObject *opts = json_object_new ();
  json_object_set_string_member (opts, "strategy", cs_adapt_strategy_name (o->strategy));
  json_object_set_int_member (opts, "epochs", o->epochs);
  json_object_set_int_member (opts, "batch", o->batch_size);
  json_object_set_double_member (opts, "lr", o->lr);
  json_object_set_int_member (opts, "lr_step_epochs", o->lr_step_epochs);
  json_object_set_double_member (opts, "lr_step_gamma", o->lr_step_gamma);
  json_object_set_int_member (opts, "eu_refresh_every", o->eu_refresh_every);
  json_object_set_int_member (opts, "au_from_epoch", o->au_from_epoch);
  json_object_set_double_member (opts, "au_percentile", o->au_percentile);
  json_object_set_double_member (opts, "tau", o->tau);
  json_object_set_boolean_member (opts, "inverted", o->inverted);
  json_object_set_int_member (opts, "k", o->k);
  json_object_set_string_member (opts, "mc_schedule", cs_mc_kind_name (o->mc_schedule));
  json_object_set_boolean_member (opts, "augment", o->augment);
  json_object_set_int_member (opts, "seed", (gint64) o->seed);
  json_object_set_int_member (opts, "slices_per_case", o->slices_per_case);
  json_object_set_object_member (root, "options", opts);
  json_object_set_int_member (root, "grid_size", a->S);
  JsonArray *names = json_array_new (), *watched = json_array_new ();
  for (guint c = 0; c < a->cases->len; c++)
    json_array_add_string_element (names, ((CsCase *) g_ptr_array_index (a->cases, c))->name);
  for (guint i = 0; i < a->items->len; i++)
    {
      AdaptItem *it = &g_array_index (a->items, AdaptItem, i);
      if (it->watched)
        json_array_add_string_element (watched, ((CsCase *) g_ptr_array_index (
                                                   a->cases, it->case_index))->name);
    }
  json_object_set_array_member (root, "cases", names);
  json_object_set_int_member (root, "n_slices", a->items->len);
  json_object_set_array_member (root, "watched", watched);
  json_object_set_int_member (root, "epochs_done", a->epochs_done);
  member_double (root, "wall_s", a->wall_s);
  member_double (root, "images_per_s", a->images_per_s);
  json_object_set_array_member (root, "refreshes", json_array_ref (a->refreshes));

  g_autoptr (JsonNode) node = json_node_init_object (json_node_alloc (), root);
  g_autoptr (JsonGenerator) gen = json_generator_new ();
  json_generator_set_root (gen, node);
  json_generator_set_pretty (gen, TRUE);
  gsize len = 0;
  g_autofree char *text = json_generator_to_data (gen, &len);
  return write_file_atomic (a->run_dir, "run.json", text, len, error);
}

/* Monte-Carlo maps of every item that needs them at this refresh (all items when the
 * strategy is guided, the watched ones always), guidance updated, watched maps written. */
static gboolean
refresh (Adapt *a, int epoch, gboolean all_items, GCancellable *cancellable, double *mean_eu,
         GError **error)
{
  const CsAdaptOptions *o = a->o;
  gsize HW = (gsize) a->S * a->S;
  g_autofree float *mean = g_new (float, HW), *eu = g_new (float, HW), *au = g_new (float, HW);
  g_autofree float *residual = g_new (float, HW);
  g_autofree char *dir = g_strdup_printf ("maps/epoch-%04d", epoch);
  JsonObject *entry = json_object_new ();
  JsonArray *watched = json_array_new ();
  json_object_set_int_member (entry, "epoch", epoch);
  double eu_all = 0, eu_watched = 0;
  int n_all = 0, n_watched = 0;
  gboolean ok = TRUE;

  for (guint i = 0; i < a->items->len && ok; i++)
    {
      AdaptItem *it = &g_array_index (a->items, AdaptItem, i);
      if (!all_items && !it->watched)
        continue;
      guint64 seed = o->seed * 1000003u + (guint64) epoch * 10007u + i;
      g_mutex_lock (&a->pm->lock);
      ok = cs_mc_infer (a->pm->model, it->image, it->roi, o->k,
                        o->mc_schedule == CS_MC_RANDOM ? CS_MC_SCHEDULE_RANDOM
                        : CS_MC_SCHEDULE_BALANCED, seed, cancellable, mean, eu, au, NULL,
                        NULL, error);
      g_mutex_unlock (&a->pm->lock);
      if (!ok)
        break;
      double m_eu = cs_mean_in_mask (eu, it->roi, HW);
      if (all_items)
        {
          cs_patch_sums (eu, a->S, a->S, a->P, it->patch_eu);
          /* The components kept out of the loss are found on what detection scores, the
           * positive residual on the cord's interior: on the whole ROI the largest AU
           * components are the cord's edges against CSF, and keeping those unlearnt
           * made detection worse, not better (README "Bundled model"). */
          for (gsize px = 0; px < HW; px++)
            residual[px] = it->scored[px] ? MAX (it->image[px] - mean[px], 0.0f) : 0.0f;
          cs_au_exclusion (residual, it->scored, a->S, a->S, a->P, o->au_percentile, 2, 3,
                           it->excluded);
          eu_all += m_eu;
          n_all++;
        }
      if (!it->watched)
        continue;
      eu_watched += m_eu;
      n_watched++;
      if (a->run_dir == NULL)
        continue;
      const char *name = ((CsCase *) g_ptr_array_index (a->cases, it->case_index))->name;
      JsonObject *w = json_object_new ();
      json_object_set_string_member (w, "case", name);
      json_object_set_int_member (w, "slice", it->slice);
      member_double (w, "mean_eu", m_eu);
      member_double (w, "mean_au", cs_mean_in_mask (au, it->roi, HW));
      member_double (w, "mse", cs_mse (mean, it->image, it->roi, HW));
      member_double (w, "psnr", cs_psnr (mean, it->image, it->roi, HW));
      member_double (w, "ssim", cs_ssim (mean, it->image, a->S, a->S, it->roi));
      JsonObject *maps = json_object_new ();
      g_autofree float *roi_f = g_new (float, HW);
      for (gsize p = 0; p < HW; p++)
        roi_f[p] = it->roi[p];
      /* In eu+au runs the patches AU exclusion keeps visible until the next refresh: 1 on
       * their pixels (it acts from au_from_epoch; before, this is what it would keep). */
      g_autofree float *excluded = NULL;
      if (all_items && o->strategy == CS_ADAPT_EU_AU)
        {
          excluded = g_new (float, HW);
          int cols = a->S / a->P;
          for (int y = 0; y < a->S; y++)
            for (int x = 0; x < a->S; x++)
              excluded[(gsize) y * a->S + x] = it->excluded[(y / a->P) * cols + x / a->P];
        }
      const struct { const char *key; const float *data; } files[] = {
        { "image", it->image }, { "roi", roi_f }, { "eu", eu }, { "au", au }, { "mean", mean },
        { "excluded", excluded },
      };
      for (guint f = 0; f < G_N_ELEMENTS (files) && ok; f++)
        {
          if (files[f].data == NULL)
            continue;
          g_autofree char *rel = g_strdup_printf ("%s/%s_%s.f32", dir, name, files[f].key);
          /* float32 little-endian: the host order on every platform we build for. */
          ok = write_file_atomic (a->run_dir, rel, files[f].data, HW * sizeof (float), error);
          json_object_set_string_member (maps, files[f].key, rel);
        }
      json_object_set_object_member (w, "maps", maps);
      json_array_add_object_element (watched, w);
    }
  if (all_items && n_all)
    json_object_set_double_member (entry, "mean_eu_all", eu_all / n_all);
  else
    json_object_set_null_member (entry, "mean_eu_all");
  member_double (entry, "mean_eu_watched", n_watched ? eu_watched / n_watched : NAN);
  json_object_set_array_member (entry, "watched", watched);
  json_array_add_object_element (a->refreshes, entry);
  *mean_eu = n_watched ? eu_watched / n_watched : NAN;
  return ok;
}

static gboolean
save_checkpoint (Adapt *a, const float *params, GError **error)
{
  if (a->run_dir == NULL)
    return TRUE;
  g_autofree char *path = g_build_filename (a->run_dir, "checkpoint.safetensors", NULL);
  g_autofree char *epochs = g_strdup_printf ("%d", a->epochs_done);
  const char *extra[] = { "adapted_epochs", epochs, "strategy",
                          cs_adapt_strategy_name (a->o->strategy),
                          "generator", "cordscope adapt " CS_VERSION, NULL };
  g_mutex_lock (&a->pm->lock);
  gboolean ok = cs_model_save (a->pm->model, params, path, extra, error);
  g_mutex_unlock (&a->pm->lock);
  return ok;
}

/* The training items: the middle cord slices of each case. */
static gboolean
collect_items (Adapt *a, GCancellable *cancellable, GError **error)
{
  int per_case = MAX (1, a->o->slices_per_case);
  for (guint c = 0; c < a->cases->len; c++)
    {
      const CsCase *cs_case = g_ptr_array_index (a->cases, c);
      if (g_cancellable_set_error_if_cancelled (cancellable, error))
        return FALSE;
      CsCaseVolumes v;
      g_autoptr (GError) local = NULL;
      if (!cs_case_volumes_load (cs_case, &v, &local))
        {
          g_printerr ("adapt: %s skipped: %s\n", cs_case->name, local->message);
          continue;
        }
      g_autofree int *slices = g_new (int, per_case);
      int n = cs_middle_cord_slices (v.image, v.seg, slices, per_case);
      int centre = cs_case_default_slice (v.image, v.seg);
      gboolean watch = (int) c < a->o->n_watch;
      for (int s = 0; s < n; s++)
        {
          CsPreparedSlice prep;
          if (!cs_prepare_slice (cs_case, &v, slices[s], a->S, &prep, &local))
            {
              g_printerr ("adapt: %s slice %d skipped: %s\n", cs_case->name, slices[s],
                          local->message);
              g_clear_error (&local);
              continue;
            }
          AdaptItem it = { 0 };
          it.case_index = (int) c;
          it.slice = slices[s];
          it.image = g_steal_pointer (&prep.slice->image);
          it.roi = g_steal_pointer (&prep.roi);
          it.is_roi = g_new0 (guint8, a->N);
          cs_roi_patches_from_mask (it.roi, a->S, a->S, a->P, it.is_roi);
          it.base = g_new0 (guint8, a->N);
          cs_context_states (it.is_roi, a->G, a->G, a->margin, it.base);
          it.patch_eu = g_new0 (double, a->N);
          it.excluded = g_new0 (guint8, a->N);
          it.scored = cs_scored_cord_mask (prep.slice, CS_DETECT_DEFAULT_CORD_INSET_PX);
          it.watched = watch && (slices[s] == centre || (n == 1));
          if (it.watched)
            watch = FALSE;
          cs_prepared_slice_clear (&prep);
          g_array_append_val (a->items, it);
        }
      cs_case_volumes_clear (&v);
    }
  if (a->items->len == 0)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_NOT_FOUND,
                   "no case with a cord mask to adapt on (%u cases)", a->cases->len);
      return FALSE;
    }
  return TRUE;
}

gboolean
cs_adapt_run (CsPipelineModel *pm, GPtrArray *cases, const CsAdaptOptions *options,
              CsAdaptProgressFunc progress, gpointer user_data, GCancellable *cancellable,
              CsAdaptResult *result, GError **error)
{
  CsAdaptOptions defaults;
  if (options == NULL)
    {
      cs_adapt_options_init (&defaults);
      options = &defaults;
    }
  const CsAdaptOptions *o = options;
  if (o->epochs < 1 || o->batch_size < 1 || o->k < 1 || o->eu_refresh_every < 1
      || !(o->tau > 0) || !(o->lr > 0) || o->lr_step_epochs < 1)
    {
      g_set_error (error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                   "adapt: epochs, batch, K and the refresh period must be >= 1, tau and lr "
                   "> 0");
      return FALSE;
    }
  gint64 t_start = g_get_monotonic_time ();
  Adapt a = { 0 };
  a.o = o;
  a.pm = pm;
  a.cases = cases;
  const CsModelConfig *geo = cs_model_get_config (pm->model);
  a.S = geo->img_size;
  a.P = geo->patch;
  a.G = a.S / a.P;
  a.N = a.G * a.G;
  a.ratio = geo->mask_ratio;
  a.margin = geo->context_margin;
  a.items = g_array_new (FALSE, TRUE, sizeof (AdaptItem));
  g_array_set_clear_func (a.items, adapt_item_clear);
  a.refreshes = json_array_new ();
  a.config_json = cs_model_config_to_json (geo);
  a.run_dir = o->run_dir ? g_strdup (o->run_dir) : NULL;
  a.first_mean_eu = a.last_mean_eu = NAN;
  gboolean ok = TRUE;
  g_autoptr (GError) failure = NULL;
  gsize n_params = cs_model_n_params (pm->model);
  g_autofree float *epoch_params = g_new (float, n_params);
  gsize HW = (gsize) a.S * a.S;

  if (a.run_dir)
    {
      if (g_mkdir_with_parents (a.run_dir, 0755) != 0)
        {
          g_set_error (&failure, G_IO_ERROR, g_io_error_from_errno (errno),
                       "%s: cannot create the run folder: %s", a.run_dir, g_strerror (errno));
          ok = FALSE;
        }
      else
        {
          g_autofree char *lp = g_build_filename (a.run_dir, "loss.csv", NULL);
          g_autofree char *ep = g_build_filename (a.run_dir, "epochs.csv", NULL);
          a.loss_csv = fopen (lp, "w");
          a.epochs_csv = fopen (ep, "w");
          if (a.loss_csv == NULL || a.epochs_csv == NULL)
            {
              g_set_error (&failure, G_IO_ERROR, g_io_error_from_errno (errno),
                           "%s: cannot write: %s", a.run_dir, g_strerror (errno));
              ok = FALSE;
            }
          else
            {
              fputs ("step,epoch,loss,loss_img,loss_edge,lr,images_per_s\n", a.loss_csv);
              fputs ("epoch,loss,loss_img,loss_edge,lr,images_per_s,wall_s,mean_eu_watched\n",
                     a.epochs_csv);
            }
        }
    }
  ok = ok && collect_items (&a, cancellable, &failure);
  if (ok)
    ok = write_run_json (&a, "running", NULL, &failure);

  CsAdaptSchedule schedule = cs_adapt_schedule_reference (o->strategy);
  schedule.eu_refresh_every = o->eu_refresh_every;
  schedule.au_from_epoch = o->au_from_epoch;
  /* Two streams from one seed: the data (epoch order, augmentation) and the masks. Every
   * strategy draws the same numbers from each (cs_adapt_mask_item takes n_patches uniforms
   * per item whatever it masks), so runs of two strategies with one seed see the same
   * batches and augmentations and the same mask noise: a paired comparison. */
  guint32 data_words[3] = { (guint32) o->seed, (guint32) (o->seed >> 32), 1 };
  guint32 mask_words[3] = { (guint32) o->seed, (guint32) (o->seed >> 32), 2 };
  GRand *data_rng = g_rand_new_with_seed_array (data_words, 3);
  GRand *mask_rng = g_rand_new_with_seed_array (mask_words, 3);
  int n_items = (int) a.items->len;
  int B = o->batch_size;
  g_autofree int *order = g_new (int, MAX (n_items, 1));
  g_autofree float *batch_images = g_new (float, (gsize) B * HW);
  g_autofree guint8 *batch_states = g_new (guint8, (gsize) B * a.N);
  double mean_eu = NAN;
  long step = 0;
  gboolean cancelled = FALSE;

  if (ok)
    {
      /* A fresh optimiser: adaptation starts Adam over (DESIGN.md). */
      g_mutex_lock (&pm->lock);
      cs_model_adam_reset (pm->model);
      memcpy (epoch_params, cs_model_params (pm->model), n_params * sizeof (float));
      g_mutex_unlock (&pm->lock);
    }

  for (int epoch = 0; ok && epoch < o->epochs; epoch++)
    {
      CsAdaptEpochPlan plan;
      cs_adapt_plan_epoch (&schedule, epoch, &plan);
      gboolean refreshed = FALSE;
      if (plan.refresh_maps)
        {
          ok = refresh (&a, epoch, o->strategy != CS_ADAPT_RANDOM, cancellable, &mean_eu,
                        &failure);
          if (!ok)
            break;
          if (epoch == 0)
            a.first_mean_eu = mean_eu;
          refreshed = TRUE;
          ok = write_run_json (&a, "running", NULL, &failure);
          if (!ok)
            break;
        }
      float lr = o->lr * powf (o->lr_step_gamma, (float) (epoch / o->lr_step_epochs));
      for (int i = 0; i < n_items; i++)
        order[i] = i;
      for (int i = n_items - 1; i > 0; i--)
        {
          int j = g_rand_int_range (data_rng, 0, i + 1);
          int t = order[i];
          order[i] = order[j];
          order[j] = t;
        }
      gint64 t_epoch = g_get_monotonic_time ();
      double sum_loss = 0, sum_img = 0, sum_edge = 0;
      int n_batches = 0, n_images = 0;
      for (int start = 0; start < n_items; start += B)
        {
          if (g_cancellable_is_cancelled (cancellable))
            {
              cancelled = TRUE;
              break;
            }
          int nb = MIN (B, n_items - start);
          for (int b = 0; b < nb; b++)
            {
              AdaptItem *it = &g_array_index (a.items, AdaptItem, order[start + b]);
              float *img = batch_images + (gsize) b * HW;
              if (o->augment)
                cs_train_augment (img, it->image, a.S, a.S, data_rng);
              else
                memcpy (img, it->image, HW * sizeof (float));
              cs_adapt_mask_item (&plan, it->is_roi, it->base, it->patch_eu, it->excluded, a.N,
                                  a.ratio, o->tau, o->inverted, mask_rng,
                                  batch_states + (gsize) b * a.N);
            }
          double loss = 0, li = 0, le = 0;
          gint64 t_step = g_get_monotonic_time ();
          g_mutex_lock (&pm->lock);
          CsBatch batch = { nb, batch_images, batch_states };
          CsForwardOut out = { 0 };
          ok = cs_model_forward_backward (pm->model, &batch, TRUE, &out, &failure);
          if (ok)
            {
              loss = out.loss, li = out.loss_img, le = out.loss_edge;
              cs_model_adam_step (pm->model, lr);
            }
          g_mutex_unlock (&pm->lock);
          if (!ok)
            break;
          double dt = (g_get_monotonic_time () - t_step) / 1e6;
          step++;
          sum_loss += loss;
          sum_img += li;
          sum_edge += le;
          n_batches++;
          n_images += nb;
          if (a.loss_csv)
            fprintf (a.loss_csv, "%ld,%d,%.6g,%.6g,%.6g,%.6g,%.4g\n", step, epoch + 1, loss, li,
                     le, (double) lr, dt > 0 ? nb / dt : 0.0);
        }
      if (!ok || cancelled)
        break;
      double epoch_s = (g_get_monotonic_time () - t_epoch) / 1e6;
      a.train_s += epoch_s;
      a.images_trained += n_images;
      a.epochs_done = epoch + 1;
      g_mutex_lock (&pm->lock);
      memcpy (epoch_params, cs_model_params (pm->model), n_params * sizeof (float));
      g_mutex_unlock (&pm->lock);
      double elapsed = (g_get_monotonic_time () - t_start) / 1e6;
      CsAdaptProgress pr = { 0 };
      pr.epoch = epoch + 1;
      pr.epochs = o->epochs;
      pr.loss = n_batches ? sum_loss / n_batches : NAN;
      pr.loss_img = n_batches ? sum_img / n_batches : NAN;
      pr.loss_edge = n_batches ? sum_edge / n_batches : NAN;
      pr.lr = lr;
      pr.images_per_s = epoch_s > 0 ? n_images / epoch_s : 0;
      pr.elapsed_s = elapsed;
      pr.eta_s = elapsed / (epoch + 1) * (o->epochs - epoch - 1);
      pr.refreshed = refreshed;
      pr.mean_eu = mean_eu;
      if (a.epochs_csv)
        {
          fprintf (a.epochs_csv, "%d,%.6g,%.6g,%.6g,%.6g,%.4g,%.3f,%.6g\n", pr.epoch, pr.loss,
                   pr.loss_img, pr.loss_edge, (double) lr, pr.images_per_s, elapsed, mean_eu);
          fflush (a.epochs_csv);
          fflush (a.loss_csv);
        }
      if (refreshed)
        ok = save_checkpoint (&a, NULL, &failure);
      if (ok && progress && !progress (&pr, user_data))
        {
          cancelled = TRUE;
          break;
        }
    }
  g_rand_free (data_rng);
  g_rand_free (mask_rng);
  if (!ok && g_error_matches (failure, G_IO_ERROR, G_IO_ERROR_CANCELLED))
    {
      cancelled = TRUE;
      ok = TRUE;
      g_clear_error (&failure);
    }

  if (cancelled || !ok)
    {
      /* Back to the last completed epoch (the weights a checkpoint holds). */
      g_mutex_lock (&pm->lock);
      memcpy (cs_model_params (pm->model), epoch_params, n_params * sizeof (float));
      cs_model_host_changed (pm->model);
      g_mutex_unlock (&pm->lock);
    }
  else
    {
      /* The maps after the last epoch: where EU ended up. */
      ok = refresh (&a, o->epochs, FALSE, NULL, &mean_eu, &failure);
    }
  if (!isfinite (a.first_mean_eu) && a.refreshes)
    a.first_mean_eu = mean_eu;
  a.last_mean_eu = mean_eu;
  a.wall_s = (g_get_monotonic_time () - t_start) / 1e6;
  a.images_per_s = a.train_s > 0 ? a.images_trained / a.train_s : NAN;
  if (a.epochs_done > 0)
    {
      g_autoptr (GError) local = NULL;
      if (!save_checkpoint (&a, NULL, &local) && ok && !cancelled)
        {
          ok = FALSE;
          failure = g_steal_pointer (&local);
        }
    }
  if (cancelled && failure == NULL)
    g_set_error (&failure, G_IO_ERROR, G_IO_ERROR_CANCELLED,
                 "adaptation cancelled after %d of %d epochs", a.epochs_done, o->epochs);
  const char *status = cancelled ? "cancelled" : ok ? "done" : "failed";
  if (a.loss_csv)
    fclose (a.loss_csv);
  if (a.epochs_csv)
    fclose (a.epochs_csv);
  if (a.run_dir && a.items)
    {
      g_autoptr (GError) local = NULL;
      if (!write_run_json (&a, status, ok && !cancelled ? NULL : failure->message, &local)
          && ok && !cancelled)
        {
          ok = FALSE;
          failure = g_steal_pointer (&local);
        }
    }
  if (result)
    {
      result->epochs_done = a.epochs_done;
      result->n_slices = (int) a.items->len;
      result->wall_s = a.wall_s;
      result->images_per_s = a.images_per_s;
      result->first_mean_eu = a.first_mean_eu;
      result->last_mean_eu = a.last_mean_eu;
    }
  g_array_unref (a.items);
  json_array_unref (a.refreshes);
  g_free (a.config_json);
  g_free (a.run_dir);
  if (!ok || cancelled)
    {
      g_propagate_error (error, g_steal_pointer (&failure));
      return FALSE;
    }
  return TRUE;
}
