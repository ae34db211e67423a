/* cli-evaluate.c: `cordscope-cli evaluate`, cross-validated patient- and segment-level
 * metrics of a detector on cases with ground truth. */
#include "cs-config.h"
#include "cs-cli.h"
#include "cli-detect-args.h"
#include "engine/cs-pipeline.h"

#include <math.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>

static const char usage[] =
  "Usage: cordscope-cli evaluate DATA [OPTIONS...]\n"
  "\n"
  "Runs a detector on every case of DATA with ground truth (NAME_truth.json of phantoms,\n"
  "else the segment labels of the annotation sidecar) and cross-validates it (DESIGN.md):\n"
  "patients and their segments are split into stratified folds; the patient threshold\n"
  "(sensitivity 0.9) and the segment threshold (best F1) are chosen on the other folds and\n"
  "applied to each fold. Prints a table of accuracy, F1, recall and specificity as mean +- sd\n"
  "over the folds (and AUC), plus reconstruction PSNR/SSIM/MSE and mean EU for u2ad.\n"
  "\n"
  "Options:\n"
  "  --json FILE         also write the full result as JSON (per-case scores included)\n"
  "  --detector D        u2ad (default) or zscore\n"
  "  --model FILE        weights (default: the bundled model)\n"
  "  -k K                Monte-Carlo samples (default 10)\n"
  "  --schedule S        balanced (default) or random\n"
  "  --folds N           folds (default 5)\n"
  "  --seed S            seed of the fold split and the masks (default 0)\n"
  "  --backend B         auto, cpu or cuda (default auto)\n"
  "  --threads T         CPU threads (default: one per processor)\n"
  "  --abs-residual      u2ad: anomaly = AU = |image - mean| (default: only image\n"
  "                      brighter than its reconstruction, max(image - mean, 0))\n"
  "  --score-roi         score the whole ROI (cord + 2 px rim; default: the cord)\n"
  "  --cord-inset PX     score the cord's interior: the mask eroded by PX px, against\n"
  "                      segmentation spill into CSF (default %d; 0: the whole mask)\n"
  "  --patient-cord      patient score = peak over the whole cord%s\n"
  "  --patient-segments  patient score = peak over the labelled segments C2-3..C7-T1%s\n"
  "  --quiet             print only the table\n";


/* A percentage redrawn in place on a terminal; in a log, one line per tenth. */
static void
on_progress (const char *stage, double fraction, gpointer user_data)
{
  static int last_tenth = -1;
  if (isatty (STDERR_FILENO))
    {
      fprintf (stderr, "\revaluate: %s %3.0f%%", stage, 100 * fraction);
      if (fraction >= 1)
        fputc ('\n', stderr);
      return;
    }
  int tenth = (int) floor (fraction * 10);
  if (tenth != last_tenth)
    fprintf (stderr, "evaluate: %s %3d%%\n", stage, tenth * 10);
  last_tenth = tenth;
}

int
cs_cli_evaluate (int argc, char **argv)
{
  CsCliDetectArgs args;
  cs_cli_detect_args_init (&args);
  int folds = 5;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i], *value = NULL;
      CsCliArgKind kind = cs_cli_detect_args_next (&args, "evaluate", usage, argc, argv, &i,
                                                   &value);
      if (kind == CS_CLI_ARG_HELP || kind == CS_CLI_ARG_ERROR)
        return kind == CS_CLI_ARG_ERROR;
      if (kind == CS_CLI_ARG_TAKEN)
        continue;
      if (strcmp (arg, "--folds") == 0)
        {
          if (!cs_cli_parse_int (value, 2, &folds))
            return cs_cli_fail ("evaluate", "--folds: '%s' is not a count >= 2", value);
        }
      else
        return cs_cli_fail ("evaluate", "unknown option '%s' (see --help)", arg);
    }
  CsDetectOptions options = args.options;
  const char *data = args.data, *json_path = args.json_path, *model_path = args.model_path;
  const char *backend = args.backend;
  int threads = args.threads;
  guint32 seed = (guint32) options.seed;  /* the fold split's seed */
  gboolean quiet = args.quiet;
  if (data == NULL)
    return cs_cli_fail ("evaluate", "DATA is required (see --help)");

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_case_discover (data, &error);
  if (cases == NULL)
    return cs_cli_fail ("evaluate", "%s", error->message);
  g_autoptr (CsPipelineModel) model = NULL;
  if (options.detector == CS_DETECTOR_U2AD)
    {
      g_autofree char *bundled = model_path ? NULL : cs_pipeline_bundled_model_path ();
      if (model_path == NULL && bundled == NULL)
        return cs_cli_fail ("evaluate", "no --model given and the bundled model is not "
                            "installed");
      model = cs_pipeline_model_load (model_path ? model_path : bundled, backend, threads,
                                      &error);
      if (model == NULL)
        return cs_cli_fail ("evaluate", "%s", error->message);
      if (cs_pipeline_model_backend_note (model) != NULL)
        fprintf (stderr, "evaluate: backend auto: %s\n", cs_pipeline_model_backend_note (model));
      if (!quiet)
        fprintf (stderr, "evaluate: backend %s, model %s\n",
                 cs_pipeline_model_backend_name (model), cs_pipeline_model_path (model));
    }
  g_autoptr (CsEvaluation) e = cs_pipeline_evaluate (cases, model, &options, folds, seed, NULL,
                                                     quiet ? NULL : on_progress, NULL, &error);
  if (e == NULL)
    return cs_cli_fail ("evaluate", "%s", error->message);
  g_autofree char *table = cs_evaluation_table (e);
  fputs (table, stdout);
  if (json_path)
    {
      g_autofree char *json = cs_evaluation_to_json (e);
      if (!g_file_set_contents (json_path, json, -1, &error))
        return cs_cli_fail ("evaluate", "%s", error->message);
    }
  return 0;
}
