/* cli-adapt.c: `cordscope-cli adapt`, U2AD's uncertainty-guided adaptation of a pretrained
 * model on a clinical set, with a run folder the researcher view reads. */
#include "cs-config.h"
#include "cs-cli.h"
#include "engine/cs-adapt.h"
#include "engine/cs-pipeline.h"

#include <glib-unix.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
  "Usage: cordscope-cli adapt DATA --out MODEL.safetensors [OPTIONS...]\n"
  "\n"
  "Adapts a pretrained U2AD model to the cases in DATA (no labels needed): a fresh Adam\n"
  "optimiser; masks guided by epistemic uncertainty (EU, refreshed by Monte-Carlo\n"
  "inference every N epochs) and, from epoch E, aleatoric-uncertainty (AU) components\n"
  "kept visible. Training slices: the 3 middle cord slices of each case with NAME_seg.\n"
  "Prints one line per epoch (loss, images/s, mean EU of the watched cases, ETA) and the\n"
  "wall time. Ctrl-C stops after the current batch and saves the last completed epoch.\n"
  "\n"
  "Options:\n"
  "  --out FILE          where to write the adapted weights (required)\n"
  "  --model FILE        pretrained weights (default: the bundled model)\n"
  "  --run DIR           run folder: run.json, loss.csv, epochs.csv, maps/ and\n"
  "                      checkpoint.safetensors (format in src/engine/cs-adapt.h / README)\n"
  "  --strategy S        eu+au (default), eu or random\n"
  "  --epochs N          epochs (default 200; lr x 0.1 every 50)\n"
  "  --batch B           batch size (default 10)\n"
  "  --lr X              learning rate (default 0.003)\n"
  "  --refresh N         refresh the EU/AU maps every N epochs (default 10)\n"
  "  --au-from E         AU-guided exclusion from epoch E (default 150)\n"
  "  --au-percentile P   AU components lie above this percentile of the map (default 90)\n"
  "  --tau T             softmax temperature of EU guidance (default 1)\n"
  "  --inverted          mask certain patches more often (U2AD's published code)\n"
  "  -k K                Monte-Carlo samples at a refresh (default 10)\n"
  "  --schedule S        balanced (default) or random Monte-Carlo masks\n"
  "  --watch N           cases whose maps the run folder keeps (default 3)\n"
  "  --slices N          training slices per case (default 3)\n"
  "  --no-augment        train on the slices as they are\n"
  "  --seed S            seed (default 0)\n"
  "  --backend B         auto, cpu or cuda (default auto)\n"
  "  --threads T         CPU threads (default: one per processor)\n"
  "  --quiet             print only errors and the final line\n";

typedef struct
{
  CsPipelineModel *model;
  GPtrArray *cases;
  CsAdaptOptions options;
  gboolean quiet;
  GCancellable *cancellable;
  CsAdaptResult result;
  gboolean ok;
  GError *error;
} AdaptJob;


static gboolean
parse_double (const char *text, double *out)
{
  char *end = NULL;
  if (text == NULL || *text == '\0')
    return FALSE;
  *out = g_ascii_strtod (text, &end);
  return *end == '\0' && isfinite (*out);
}

static gboolean
on_epoch (const CsAdaptProgress *p, gpointer user_data)
{
  AdaptJob *job = user_data;
  if (!job->quiet)
    {
      printf ("epoch %d/%d  loss %.6f (img %.6f, edge %.6f)  lr %.2g  %.2f images/s  "
              "mean EU %.4g%s  elapsed %.0f s  ETA %.0f s\n", p->epoch, p->epochs, p->loss,
              p->loss_img, p->loss_edge, (double) p->lr, p->images_per_s, p->mean_eu,
              p->refreshed ? " (refreshed)" : "", p->elapsed_s, p->eta_s);
      fflush (stdout);
    }
  return TRUE;
}

static void
adapt_work (gpointer data)
{
  AdaptJob *job = data;
  job->ok = cs_adapt_run (job->model, job->cases, &job->options, on_epoch, job,
                          job->cancellable, &job->result, &job->error);
}

int
cs_cli_adapt (int argc, char **argv)
{
  AdaptJob job = { 0 };
  cs_adapt_options_init (&job.options);
  CsAdaptOptions *o = &job.options;
  const char *data = NULL, *out = NULL, *model_path = NULL, *backend = "auto";
  int threads = 0;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i];
      const char *value = i + 1 < argc ? argv[i + 1] : NULL;
      double x = 0;
      if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
        {
          fputs (usage, stdout);
          return 0;
        }
      if (strcmp (arg, "--quiet") == 0)
        {
          job.quiet = TRUE;
          continue;
        }
      if (strcmp (arg, "--inverted") == 0)
        {
          o->inverted = TRUE;
          continue;
        }
      if (strcmp (arg, "--no-augment") == 0)
        {
          o->augment = FALSE;
          continue;
        }
      if (arg[0] != '-' && data == NULL)
        {
          data = arg;
          continue;
        }
      if (arg[0] != '-' || value == NULL)
        return cs_cli_fail ("adapt", "unexpected argument or missing value: '%s' (see --help)",
                            arg);
      i++;
      if (strcmp (arg, "--out") == 0)
        out = value;
      else if (strcmp (arg, "--model") == 0)
        model_path = value;
      else if (strcmp (arg, "--run") == 0)
        o->run_dir = value;
      else if (strcmp (arg, "--backend") == 0)
        backend = value;
      else if (strcmp (arg, "--strategy") == 0)
        {
          if (!cs_adapt_strategy_from_name (value, &o->strategy))
            return cs_cli_fail ("adapt", "--strategy: '%s' is not eu+au, eu or random", value);
        }
      else if (strcmp (arg, "--schedule") == 0)
        {
          if (!cs_mc_kind_from_name (value, &o->mc_schedule))
            return cs_cli_fail ("adapt", "--schedule: '%s' is not balanced or random", value);
        }
      else if (strcmp (arg, "--epochs") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &o->epochs))
            return cs_cli_fail ("adapt", "--epochs: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--batch") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &o->batch_size))
            return cs_cli_fail ("adapt", "--batch: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--refresh") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &o->eu_refresh_every))
            return cs_cli_fail ("adapt", "--refresh: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--au-from") == 0)
        {
          if (!cs_cli_parse_int (value, 0, &o->au_from_epoch))
            return cs_cli_fail ("adapt", "--au-from: '%s' is not an epoch", value);
        }
      else if (strcmp (arg, "-k") == 0 || strcmp (arg, "--k") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &o->k))
            return cs_cli_fail ("adapt", "-k: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--watch") == 0)
        {
          if (!cs_cli_parse_int (value, 0, &o->n_watch))
            return cs_cli_fail ("adapt", "--watch: '%s' is not a count", value);
        }
      else if (strcmp (arg, "--slices") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &o->slices_per_case))
            return cs_cli_fail ("adapt", "--slices: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--threads") == 0)
        {
          if (!cs_cli_parse_int (value, 1, &threads))
            return cs_cli_fail ("adapt", "--threads: '%s' is not a count >= 1", value);
        }
      else if (strcmp (arg, "--lr") == 0)
        {
          if (!parse_double (value, &x) || !(x > 0 && x < 1))
            return cs_cli_fail ("adapt", "--lr: '%s' is not a rate in (0, 1)", value);
          o->lr = (float) x;
        }
      else if (strcmp (arg, "--au-percentile") == 0)
        {
          if (!parse_double (value, &x) || !(x >= 0 && x < 100))
            return cs_cli_fail ("adapt", "--au-percentile: '%s' is not in [0, 100)", value);
          o->au_percentile = x;
        }
      else if (strcmp (arg, "--tau") == 0)
        {
          if (!parse_double (value, &x) || !(x > 0))
            return cs_cli_fail ("adapt", "--tau: '%s' is not a temperature > 0", value);
          o->tau = x;
        }
      else if (strcmp (arg, "--seed") == 0)
        {
          char *end = NULL;
          o->seed = g_ascii_strtoull (value, &end, 10);
          if (*value == '-' || *end != '\0')
            return cs_cli_fail ("adapt", "--seed: '%s' is not a seed", value);
        }
      else
        return cs_cli_fail ("adapt", "unknown option '%s' (see --help)", arg);
    }
  if (data == NULL || out == NULL)
    return cs_cli_fail ("adapt", "DATA and --out FILE are required (see --help)");

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_case_discover (data, &error);
  if (cases == NULL)
    return cs_cli_fail ("adapt", "%s", error->message);
  g_autofree char *bundled = model_path ? NULL : cs_pipeline_bundled_model_path ();
  if (model_path == NULL && bundled == NULL)
    return cs_cli_fail ("adapt", "no --model given and the bundled model is not installed");
  g_autoptr (CsPipelineModel) model = cs_pipeline_model_load (model_path ? model_path : bundled,
                                                              backend, threads, &error);
  if (model == NULL)
    return cs_cli_fail ("adapt", "%s", error->message);
  if (cs_pipeline_model_backend_note (model) != NULL)
    fprintf (stderr, "adapt: backend auto: %s\n", cs_pipeline_model_backend_note (model));
  if (!job.quiet)
    {
      printf ("backend: %s; model %s; %u cases in %s; strategy %s%s, %d epochs, refresh every "
              "%d, AU from %d, K %d %s\n", cs_pipeline_model_backend_name (model),
              cs_pipeline_model_path (model), cases->len, data,
              cs_adapt_strategy_name (o->strategy), o->inverted ? " (inverted)" : "", o->epochs,
              o->eu_refresh_every, o->au_from_epoch, o->k, cs_mc_kind_name (o->mc_schedule));
      fflush (stdout);
    }

  job.model = model;
  job.cases = cases;
  job.cancellable = g_cancellable_new ();
  cs_cli_run_cancellable ("adapt", adapt_work, &job, job.cancellable);

  int status = 0;
  gboolean cancelled = !job.ok && g_error_matches (job.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  if (!job.ok && !cancelled)
    status = cs_cli_fail ("adapt", "%s", job.error->message);
  else if (job.result.epochs_done == 0)
    {
      fprintf (stderr, "adapt: cancelled before the first epoch ended: nothing saved\n");
      status = 130;
    }
  else
    {
      g_autofree char *epochs = g_strdup_printf ("%d", job.result.epochs_done);
      const char *extra[] = { "adapted_epochs", epochs, "strategy",
                              cs_adapt_strategy_name (o->strategy),
                              "generator", "cordscope-cli adapt " CS_VERSION, NULL };
      if (!cs_pipeline_model_save (model, out, extra, &error))
        status = cs_cli_fail ("adapt", "%s", error->message);
      else
        {
          printf ("%s %d epochs on %d slices in %.1f s wall (%.2f images/s training); mean EU "
                  "of the watched cases %.4g -> %.4g; weights in %s\n",
                  cancelled ? "cancelled after" : "adapted", job.result.epochs_done,
                  job.result.n_slices, job.result.wall_s, job.result.images_per_s,
                  job.result.first_mean_eu, job.result.last_mean_eu, out);
          status = cancelled ? 130 : 0;
        }
    }
  g_clear_error (&job.error);
  g_object_unref (job.cancellable);
  return status;
}
