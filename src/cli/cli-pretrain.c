/* cli-pretrain.c: `cordscope-cli pretrain`, pre-training the U2AD masked autoencoder on
 * the middle cord slices of a folder of healthy cases. */
#include "cs-config.h"
#include "cs-cli.h"
#include "engine/cs-model-file.h"
#include "engine/cs-pipeline-private.h" /* the slices and ROI adapt and detect use too */
#include "engine/cs-train.h"
#include "io/cs-case.h"
#include "io/cs-slice2d.h"

#include <glib-unix.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
  "Usage: cordscope-cli pretrain DATA --out MODEL.safetensors [OPTIONS...]\n"
  "\n"
  "Pre-trains the U2AD masked autoencoder (random ROI masking, augmentation, Adam) on the\n"
  "cases found in DATA (an image, a flat folder or a BIDS tree). Each case needs a cord\n"
  "mask (NAME_seg); its 3 middle cord slices (around the slice with the largest cord\n"
  "area) become training images: resampled to 1 mm, cropped around the cord to the\n"
  "model's image size and normalised, with ROI = cord mask dilated by 2 px.\n"
  "Prints one line per epoch (loss, images/s, ETA). Ctrl-C stops after the current\n"
  "batch and saves the weights of the last completed epoch.\n"
  "The weights are written atomically as safetensors, with the configuration in the\n"
  "metadata (format cordscope-u2ad, version 1), so PyTorch users can load them.\n"
  "\n"
  "Options:\n"
  "  --out FILE          where to write the weights (required)\n"
  "  --epochs N          epochs (default 100; lr x 0.1 every 50)\n"
  "  --batch B           batch size (default 10)\n"
  "  --config C          preset (reference, large, small, tiny) or a JSON file with the\n"
  "                      configuration's keys (default: small on the CPU, reference on CUDA)\n"
  "  --threads T         CPU threads (default: one per processor)\n"
  "  --seed S            seed of the init, masks, order and augmentation (default 0)\n"
  "  --backend B         auto, cpu or cuda (default auto)\n"
  "  --lr X              learning rate (default 0.003)\n"
  "  --no-augment        train on the slices as they are\n"
  "  --quiet             print only errors\n";

#define SLICES_PER_CASE 3

typedef struct
{
  float *image;
  guint8 *roi;
} TrainImage;

static void
train_image_clear (gpointer data)
{
  TrainImage *t = data;
  g_free (t->image);
  g_free (t->roi);
}

/* The training images of every case under data; cases without a usable cord mask are
 * skipped with a note on stderr. */
static GArray *
collect_training_images (const char *data, int size, guint *n_cases, GError **error)
{
  g_autoptr (GPtrArray) cases = cs_case_discover (data, error);
  if (cases == NULL)
    return NULL;
  GArray *images = g_array_new (FALSE, TRUE, sizeof (TrainImage));
  g_array_set_clear_func (images, train_image_clear);
  *n_cases = 0;
  for (guint c = 0; c < cases->len; c++)
    {
      const CsCase *cs_case = g_ptr_array_index (cases, c);
      if (cs_case->seg_path == NULL)
        {
          fprintf (stderr, "pretrain: %s: no cord mask (NAME_seg): skipped\n",
                   cs_case->image_path);
          continue;
        }
      g_autoptr (GError) local = NULL;
      g_autoptr (CsVolume) image = cs_volume_load (cs_case->image_path, &local);
      g_autoptr (CsVolume) seg = image ? cs_volume_load (cs_case->seg_path, &local) : NULL;
      if (seg != NULL && memcmp (seg->dim, image->dim, sizeof seg->dim) != 0)
        g_set_error (&local, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                     "%s: not on the grid of %s", cs_case->seg_path, cs_case->image_path);
      if (local != NULL)
        {
          fprintf (stderr, "pretrain: skipped: %s\n", local->message);
          continue;
        }
      int slices[SLICES_PER_CASE];
      int n = cs_middle_cord_slices (image, seg, slices, SLICES_PER_CASE);
      guint before = images->len;
      for (int s = 0; s < n; s++)
        {
          g_autoptr (CsSlice2d) slice = cs_slice2d_new (image, seg, slices[s], size, &local);
          if (slice == NULL)
            {
              fprintf (stderr, "pretrain: %s slice %d skipped: %s\n", cs_case->name,
                       slices[s], local->message);
              g_clear_error (&local);
              continue;
            }
          gsize n_roi = 0;
          TrainImage t = { NULL, NULL };
          t.roi = slice->roi ? cs_dilate_mask (slice->roi, size, CS_PIPELINE_ROI_DILATION_PX,
                                               &n_roi)
                             : NULL;
          if (n_roi == 0)
            {
              g_free (t.roi);
              continue;
            }
          t.image = g_steal_pointer (&slice->image);
          g_array_append_val (images, t);
        }
      if (images->len > before)
        (*n_cases)++;
      else
        fprintf (stderr, "pretrain: %s: no cord on any slice: skipped\n", cs_case->name);
    }
  if (images->len == 0)
    {
      g_set_error (error, CS_IO_ERROR, CS_IO_ERROR_GEOMETRY,
                   "%s: no case with a cord mask to train on (%u cases found)", data,
                   cases->len);
      g_array_unref (images);
      return NULL;
    }
  return images;
}

/* ---------------------------------------------------------------------------------- */

typedef struct
{
  CsModel *model;
  const CsTrainSlice *slices;
  int n_slices;
  CsTrainOptions options;
  gboolean quiet;
  GCancellable *cancellable;
  /* written by the training thread, read once it has finished */
  float *epoch_params;      /* weights after the last completed epoch */
  int epochs_done;
  double last_loss;
  gboolean ok;
  GError *error;
} PretrainJob;

static char *
format_duration (double seconds)
{
  if (!isfinite (seconds) || seconds < 0)
    return g_strdup ("?");
  long s = lround (seconds);
  if (s >= 3600)
    return g_strdup_printf ("%ldh%02ldm", s / 3600, (s / 60) % 60);
  if (s >= 60)
    return g_strdup_printf ("%ldm%02lds", s / 60, s % 60);
  return g_strdup_printf ("%lds", s);
}

static gboolean
on_epoch (const CsTrainProgress *progress, gpointer user_data)
{
  PretrainJob *job = user_data;
  /* Keep this epoch's weights: a cancel during the next one saves these. */
  size_t n = cs_model_n_params (job->model);
  if (job->epoch_params == NULL)
    job->epoch_params = g_new (float, n);
  memcpy (job->epoch_params, cs_model_params (job->model), n * sizeof (float));
  job->epochs_done = progress->epoch;
  job->last_loss = progress->loss;
  if (!job->quiet)
    {
      g_autofree char *eta = format_duration (progress->eta_s);
      printf ("epoch %d/%d  loss %.6f (img %.6f, edge %.6f)  lr %.2g  %.2f images/s  ETA %s\n",
              progress->epoch, progress->epochs, progress->loss, progress->loss_img,
              progress->loss_edge, (double) progress->lr, progress->images_per_s, eta);
      fflush (stdout);
    }
  return TRUE;
}

static void
train_work (gpointer data)
{
  PretrainJob *job = data;
  job->ok = cs_train_pretrain (job->model, job->slices, job->n_slices, &job->options, on_epoch,
                               job, job->cancellable, &job->error);
}

/* Writes the model's weights (params: the flat buffer in table order) with the
 * configuration and the run's facts in the metadata. */
static gboolean
save_weights (CsModel *model, const float *params, const char *path, const char *preset,
              int epochs, guint64 seed, double loss, int n_slices, GError **error)
{
  g_autofree char *epochs_s = g_strdup_printf ("%d", epochs);
  g_autofree char *seed_s = g_strdup_printf ("%" G_GUINT64_FORMAT, seed);
  char loss_buf[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd (loss_buf, sizeof loss_buf, "%.6g", loss);
  g_autofree char *slices_s = g_strdup_printf ("%d", n_slices);
  g_autoptr (GDateTime) now = g_date_time_new_now_utc ();
  g_autofree char *created = g_date_time_format_iso8601 (now);
  const char *metadata[] = {
    "epochs", epochs_s, "seed", seed_s, "preset", preset,
    "created", created, "final_loss", loss_buf, "training_slices", slices_s,
    "generator", "cordscope-cli pretrain " CS_VERSION, NULL
  };
  return cs_model_save (model, params, path, metadata, error);
}


int
cs_cli_pretrain (int argc, char **argv)
{
  CsTrainOptions options;
  cs_train_options_init (&options);
  const char *data = NULL, *out = NULL, *config_arg = NULL, *backend_name = "auto";
  int threads = 0;
  gboolean quiet = FALSE;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      const char *value = i + 1 < argc ? argv[i + 1] : NULL;
      if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          fputs (usage, stdout);
          return 0;
        }
      if (strcmp (arg, "--quiet") == 0)
        {
          quiet = TRUE;
          continue;
        }
      if (strcmp (arg, "--no-augment") == 0)
        {
          options.augment = FALSE;
          continue;
        }
      if (arg[0] != '-' && data == NULL)
        {
          data = arg;
          continue;
        }
      if (arg[0] != '-' || value == NULL)
        return cs_cli_fail ("pretrain", "unexpected argument or missing value: '%s' "
                            "(see --help)", arg);
      i++;
      if (strcmp (arg, "--out") == 0)
        out = value;
      else if (strcmp (arg, "--epochs") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &options.epochs))
            return cs_cli_fail ("pretrain", "--epochs: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--batch") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &options.batch_size))
            return cs_cli_fail ("pretrain", "--batch: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--threads") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &threads))
            return cs_cli_fail ("pretrain", "--threads: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--seed") == 0)
        {
          char *end = NULL;
          options.seed = g_ascii_strtoull (value, &end, 10);
          if (*value == '-' || *end != '\0')
            return cs_cli_fail ("pretrain", "--seed: '%s' is not a seed", value);
        }
      else if (strcmp (arg, "--lr") == 0)
        {
          char *end = NULL;
          double lr = g_ascii_strtod (value, &end);
          if (*end != '\0' || !(lr > 0 && lr < 1))
            return cs_cli_fail ("pretrain", "--lr: '%s' is not a rate in (0, 1)", value);
          options.lr = (float) lr;
        }
      else if (strcmp (arg, "--config") == 0)
        config_arg = value;
      else if (strcmp (arg, "--backend") == 0)
        backend_name = value;
      else
        return cs_cli_fail ("pretrain", "unknown option '%s' (see --help)", arg);
    }
  if (data == NULL || out == NULL)
    return cs_cli_fail ("pretrain", "DATA and --out FILE are required (see --help)");
  if (strcmp (backend_name, "auto") != 0 && strcmp (backend_name, "cpu") != 0
      && strcmp (backend_name, "cuda") != 0)
    return cs_cli_fail ("pretrain", "--backend: '%s' is not auto, cpu or cuda", backend_name);

  g_autofree char *reason = NULL;
  CsBackend *backend = cs_backend_open (backend_name, threads, &reason);
  if (backend == NULL)
    return cs_cli_fail ("pretrain", "backend %s is not available: %s", backend_name,
                        reason ? reason : "no reason given");
  if (!quiet)
    {
      printf ("backend: %s, %d threads%s%s%s\n", cs_backend_name (backend), backend->n_threads,
              reason ? " (CUDA not used: " : "", reason ? reason : "", reason ? ")" : "");
      fflush (stdout);
    }

  /* Configuration: a preset name, or a JSON file with the contract's keys. */
  CsModelConfig config;
  g_autoptr (GError) error = NULL;
  g_autofree char *preset = g_strdup (config_arg ? config_arg
                                      : cs_backend_is_host (backend)
                                      ? cs_model_config_default_cpu () : "reference");
  if (g_str_has_suffix (preset, ".json") || g_file_test (preset, G_FILE_TEST_IS_REGULAR))
    {
      g_autofree char *json = NULL;
      if (!g_file_get_contents (preset, &json, NULL, &error)
          || !cs_model_config_from_json (json, &config, &error))
        {
          cs_backend_close (backend);
          return cs_cli_fail ("pretrain", "--config %s: %s", preset, error->message);
        }
      g_autofree char *base = g_path_get_basename (preset);
      g_free (preset);
      preset = g_strconcat ("file:", base, NULL);
    }
  else if (!cs_model_config_preset (preset, &config, &error))
    {
      cs_backend_close (backend);
      return cs_cli_fail ("pretrain", "--config: %s", error->message);
    }

  guint n_cases = 0;
  g_autoptr (GArray) images = collect_training_images (data, config.img_size, &n_cases,
                                                       &error);
  if (images == NULL)
    {
      cs_backend_close (backend);
      return cs_cli_fail ("pretrain", "%s", error->message);
    }
  g_autofree CsTrainSlice *slices = g_new0 (CsTrainSlice, images->len);
  for (guint i = 0; i < images->len; i++)
    {
      slices[i].image = g_array_index (images, TrainImage, i).image;
      slices[i].roi = g_array_index (images, TrainImage, i).roi;
    }

  CsModel *model = cs_model_new (&config, backend, options.seed, &error);
  if (model == NULL)
    {
      cs_backend_close (backend);
      return cs_cli_fail ("pretrain", "%s", error->message);
    }
  if (!quiet)
    {
      g_autofree char *json = cs_model_config_to_json (&config);
      printf ("model: %s %s, %zu parameters\n", preset, json, cs_model_n_params (model));
      printf ("data: %u slices from %u cases in %s; %d epochs, batch %d, lr %g, seed %"
              G_GUINT64_FORMAT "\n", images->len, n_cases, data, options.epochs,
              options.batch_size, (double) options.lr, options.seed);
      fflush (stdout);
    }

  PretrainJob job = { 0 };
  job.model = model;
  job.slices = slices;
  job.n_slices = (int) images->len;
  job.options = options;
  job.quiet = quiet;
  job.cancellable = g_cancellable_new ();
  cs_cli_run_cancellable ("pretrain", train_work, &job, job.cancellable);

  int status = 0;
  gboolean cancelled = !job.ok && g_error_matches (job.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  if (!job.ok && !cancelled)
    status = cs_cli_fail ("pretrain", "%s", job.error->message);
  else if (job.epochs_done == 0)
    {
      fprintf (stderr, "pretrain: cancelled before the first epoch ended: nothing saved\n");
      status = 130;
    }
  else if (!save_weights (model, job.epoch_params, out, preset, job.epochs_done, options.seed,
                          job.last_loss, job.n_slices, &error))
    status = cs_cli_fail ("pretrain", "%s", error->message);
  else
    {
      if (!quiet || cancelled)
        printf ("%s the weights of epoch %d to %s\n", cancelled ? "cancelled: saved"
                : "saved", job.epochs_done, out);
      status = cancelled ? 130 : 0;
    }

  g_clear_error (&job.error);
  g_free (job.epoch_params);
  g_object_unref (job.cancellable);
  cs_model_free (model);
  cs_backend_close (backend);
  return status;
}
