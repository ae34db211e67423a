#include "cs-config.h"
#include "cs-cli.h"
#include "cli-detect-args.h"

#include <stdio.h>
#include <string.h>

void
cs_cli_detect_args_init (CsCliDetectArgs *args)
{
  memset (args, 0, sizeof *args);
  cs_detect_options_init (&args->options);
  args->backend = "auto";
}

/* The shared options that take a value; 0 when ARG is none of them. */
static int
take_valued_option (CsCliDetectArgs *args, const char *command, const char *arg,
                    const char *value, int *i)
{
  CsDetectOptions *o = &args->options;
  static const char *const valued[] = { "--json", "--model", "--backend", "--detector",
                                        "--schedule", "--cord-inset", "-k", "--k",
                                        "--threads", "--seed" };
  gboolean known = FALSE;
  for (guint n = 0; n < G_N_ELEMENTS (valued) && !known; n++)
    known = strcmp (arg, valued[n]) == 0;
  if (!known)
    return 0;
  if (value == NULL)
    return cs_cli_fail (command, "%s needs a value (see --help)", arg), -1;
  (*i)++;
  if (strcmp (arg, "--json") == 0)
    args->json_path = value;
  else if (strcmp (arg, "--model") == 0)
    args->model_path = value;
  else if (strcmp (arg, "--backend") == 0)
    args->backend = value;
  else if (strcmp (arg, "--detector") == 0)
    {
      if (!cs_detector_kind_from_name (value, &o->detector))
        return cs_cli_fail (command, "--detector: '%s' is not u2ad or zscore", value), -1;
    }
  else if (strcmp (arg, "--schedule") == 0)
    {
      if (!cs_mc_kind_from_name (value, &o->schedule))
        return cs_cli_fail (command, "--schedule: '%s' is not balanced or random", value), -1;
    }
  else if (strcmp (arg, "--cord-inset") == 0)
    {
      if (!cs_cli_parse_int (value, 0, &o->cord_inset_px) || o->cord_inset_px > 8)
        return cs_cli_fail (command, "--cord-inset: '%s' is not 0..8 px", value), -1;
    }
  else if (strcmp (arg, "-k") == 0 || strcmp (arg, "--k") == 0)
    {
      if (!cs_cli_parse_int (value, 1, &o->k))
        return cs_cli_fail (command, "-k: '%s' is not a count >= 1", value), -1;
    }
  else if (strcmp (arg, "--threads") == 0)
    {
      if (!cs_cli_parse_int (value, 1, &args->threads))
        return cs_cli_fail (command, "--threads: '%s' is not a count >= 1", value), -1;
    }
  else /* --seed */
    {
      char *end = NULL;
      o->seed = g_ascii_strtoull (value, &end, 10);
      if (*value == '-' || *value == '\0' || *end != '\0')
        return cs_cli_fail (command, "--seed: '%s' is not a seed", value), -1;
    }
  return 1;
}

int
cs_cli_detect_args_take (CsCliDetectArgs *args, const char *command, int argc, char **argv,
                         int *i)
{
  CsDetectOptions *o = &args->options;
  const char *arg = argv[*i];

  if (strcmp (arg, "--quiet") == 0)
    args->quiet = TRUE;
  else if (strcmp (arg, "--abs-residual") == 0)
    o->positive_only = FALSE;
  else if (strcmp (arg, "--patient-cord") == 0 || strcmp (arg, "--patient-segments") == 0)
    o->patient_over_segments = strcmp (arg, "--patient-segments") == 0;
  else if (strcmp (arg, "--score-roi") == 0)
    o->cord_only = FALSE;
  else if (arg[0] != '-')
    {
      if (args->data != NULL)
        return 0;  /* one DATA only */
      args->data = arg;
    }
  else
    return take_valued_option (args, command, arg, *i + 1 < argc ? argv[*i + 1] : NULL, i);
  return 1;
}

CsCliArgKind
cs_cli_detect_args_next (CsCliDetectArgs *args, const char *command, const char *usage,
                         int argc, char **argv, int *i, const char **value)
{
  const char *arg = argv[*i];
  if (strcmp (arg, "--help") == 0 || strcmp (arg, "-h") == 0)
    {
      printf (usage, CS_DETECT_DEFAULT_CORD_INSET_PX,
              CS_DETECT_DEFAULT_PATIENT_OVER_SEGMENTS ? "" : " (default)",
              CS_DETECT_DEFAULT_PATIENT_OVER_SEGMENTS ? " (default)" : "");
      return CS_CLI_ARG_HELP;
    }
  int taken = cs_cli_detect_args_take (args, command, argc, argv, i);
  if (taken != 0)
    return taken > 0 ? CS_CLI_ARG_TAKEN : CS_CLI_ARG_ERROR;
  *value = *i + 1 < argc ? argv[*i + 1] : NULL;
  if (arg[0] != '-' || *value == NULL)
    {
      cs_cli_fail (command, "unexpected argument or missing value: '%s' (see --help)", arg);
      return CS_CLI_ARG_ERROR;
    }
  (*i)++;
  return CS_CLI_ARG_OWN;
}
