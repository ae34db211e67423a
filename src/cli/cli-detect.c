/* cli-detect.c: `cordscope-cli detect`, U2AD (or the z-score baseline) on each case of a
 * file, folder or BIDS tree: one JSON object per case, NIfTI maps on request. */
#include "cs-config.h"
#include "cs-cli.h"
#include "cli-detect-args.h"
#include "engine/cs-pipeline.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
  "Usage: cordscope-cli detect DATA [OPTIONS...]\n"
  "\n"
  "Detects T2 hyperintensity on the default sagittal slice (largest cord area) of each\n"
  "case in DATA (an image, a flat folder or a BIDS tree; each case needs NAME_seg, and\n"
  "NAME_labels-disc for per-segment scores). Writes one JSON object per case (schema in\n"
  "README, \"Detection output\"): case, backend, model, k, schedule, patient_score,\n"
  "segments [{name, present, score, row_start, row_end, grid_row_start, grid_row_end}],\n"
  "curve (per grid row), reconstruction quality and timings. With several cases the\n"
  "output is a JSON array. The backend used is printed on stderr.\n"
  "\n"
  "Options:\n"
  "  --json FILE         write the JSON to FILE (atomically) instead of stdout\n"
  "  --maps DIR          write NAME_anomaly, NAME_eu, NAME_au and NAME_mean .nii.gz\n"
  "                      (float32, in the case's voxel grid; EU/AU/mean for u2ad only)\n"
  "  --detector D        u2ad (default) or zscore (baseline, no model)\n"
  "  --model FILE        weights (default: the bundled model)\n"
  "  -k K                Monte-Carlo samples per ROI patch (default 10)\n"
  "  --schedule S        balanced (default: each ROI patch masked exactly K times) or\n"
  "                      random (the paper's independent masks)\n"
  "  --slice N           sagittal slice (default: the largest cord area)\n"
  "  --seed S            seed of the Monte-Carlo masks (default 0)\n"
  "  --backend B         auto, cpu or cuda (default auto)\n"
  "  --threads T         CPU threads (default: one per processor)\n"
  "  --abs-residual      u2ad: anomaly = AU = |image - mean| (default: only image\n"
  "                      brighter than its reconstruction, max(image - mean, 0))\n"
  "  --score-roi         score the whole ROI (cord + 2 px rim; default: the cord)\n"
  "  --cord-inset PX     score the cord's interior: the mask eroded by PX px, against\n"
  "                      segmentation spill into CSF (default %d; 0: the whole mask)\n"
  "  --patient-cord      patient score = peak over the whole cord%s\n"
  "  --patient-segments  patient score = peak over the labelled segments C2-3..C7-T1%s\n"
  "  --quiet             print nothing on stderr but errors\n";


int
cs_cli_detect (int argc, char **argv)
{
  CsCliDetectArgs args;
  cs_cli_detect_args_init (&args);
  const char *maps_dir = NULL;

  for (int i = 1; i < argc; i++)
    {
      const char *arg = argv[i], *value = NULL;
      CsCliArgKind kind = cs_cli_detect_args_next (&args, "detect", usage, argc, argv, &i,
                                                   &value);
      if (kind == CS_CLI_ARG_HELP || kind == CS_CLI_ARG_ERROR)
        return kind == CS_CLI_ARG_ERROR;
      if (kind == CS_CLI_ARG_TAKEN)
        continue;
      if (strcmp (arg, "--maps") == 0)
        maps_dir = value;
      else if (strcmp (arg, "--slice") == 0)
        {
          if (!cs_cli_parse_int (value, 0, &args.options.slice))
            return cs_cli_fail ("detect", "--slice: '%s' is not a slice index", value);
        }
      else
        return cs_cli_fail ("detect", "unknown option '%s' (see --help)", arg);
    }
  CsDetectOptions options = args.options;
  const char *data = args.data, *json_path = args.json_path, *model_path = args.model_path;
  const char *backend = args.backend;
  int threads = args.threads;
  gboolean quiet = args.quiet;
  if (data == NULL)
    return cs_cli_fail ("detect", "DATA is required (see --help)");
  options.volume_maps = maps_dir != NULL;

  g_autoptr (GError) error = NULL;
  g_autoptr (GPtrArray) cases = cs_case_discover (data, &error);
  if (cases == NULL)
    return cs_cli_fail ("detect", "%s", error->message);

  g_autoptr (CsPipelineModel) model = NULL;
  if (options.detector == CS_DETECTOR_U2AD)
    {
      g_autofree char *bundled = model_path ? NULL : cs_pipeline_bundled_model_path ();
      if (model_path == NULL && bundled == NULL)
        return cs_cli_fail ("detect", "no --model given and the bundled model "
                            "(models/cordscope-u2ad-small.safetensors) is not installed");
      model = cs_pipeline_model_load (model_path ? model_path : bundled, backend, threads,
                                      &error);
      if (model == NULL)
        return cs_cli_fail ("detect", "%s", error->message);
      if (cs_pipeline_model_backend_note (model) != NULL)
        fprintf (stderr, "detect: backend auto: %s\n", cs_pipeline_model_backend_note (model));
      if (!quiet)
        fprintf (stderr, "detect: backend %s, model %s\n",
                 cs_pipeline_model_backend_name (model), cs_pipeline_model_path (model));
    }
  else if (!quiet)
    fprintf (stderr, "detect: detector zscore (no model, no backend)\n");

  GString *out = g_string_new (cases->len > 1 ? "[\n" : "");
  int status = 0;
  for (guint c = 0; c < cases->len; c++)
    {
      const CsCase *cs_case = g_ptr_array_index (cases, c);
      g_autoptr (CsDetection) d = cs_pipeline_detect_case (cs_case, model, &options, NULL, NULL,
                                                           NULL, &error);
      if (d == NULL)
        {
          status = cs_cli_fail ("detect", "%s", error->message);
          break;
        }
      if (maps_dir && !cs_detection_write_maps (d, maps_dir, &error))
        {
          status = cs_cli_fail ("detect", "%s", error->message);
          break;
        }
      g_autofree char *json = cs_detection_to_json (d);
      g_string_append (out, json);
      g_string_append (out, c + 1 < cases->len ? ",\n" : "\n");
      if (!quiet)
        fprintf (stderr, "detect: %s: patient score %.4g, %s, %d passes, %.3f s (inference "
                 "%.3f s)\n", d->case_name, d->patient_score,
                 options.detector == CS_DETECTOR_U2AD ? cs_mc_kind_name (d->schedule) : "zscore",
                 d->n_passes, d->timings.total_s, d->timings.inference_s);
    }
  if (cases->len > 1)
    g_string_append (out, "]\n");
  if (status == 0)
    {
      if (json_path)
        {
          if (!g_file_set_contents (json_path, out->str, out->len, &error))
            status = cs_cli_fail ("detect", "%s", error->message);
        }
      else
        fputs (out->str, stdout);
    }
  g_string_free (out, TRUE);
  return status;
}
